"""Fixtures for the registry source tests: a fake legacy registry (the
registration API of Lyft's `discovery` service) on loopback, and raw xDS
streams decoded with the official schemas (e2e/conformance/ads_client.py)."""
import pathlib
import sys

import pytest

from peers.registry import FakeRegistry

CONFORMANCE = pathlib.Path(__file__).resolve().parent.parent / "conformance"
if str(CONFORMANCE) not in sys.path:
    sys.path.insert(0, str(CONFORMANCE))

from ads_client import XdsStream  # noqa: E402

@pytest.fixture
def registry():
    """A started FakeRegistry; stop() and start() keep its port."""
    instance = FakeRegistry().start()
    yield instance
    instance.stop()


@pytest.fixture
def xds():
    """open_stream(attache, node=None) -> an ADS XdsStream, closed at the end."""
    streams = []

    def open_stream(attache, node=None):
        stream = XdsStream(attache.xds_address, node=node)
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()
