"""Fixtures for the wire-level xDS conformance suite.

The attache process itself comes from e2e/conftest.py (`attache_factory`); this
file adds raw xDS streams that are closed when the test ends.
"""
import pytest

from ads_client import XdsStream


@pytest.fixture
def xds():
    """open_stream(attache, node=None, service="ads") -> XdsStream."""
    streams = []

    def open_stream(attache, node=None, service="ads"):
        stream = XdsStream(attache.xds_address, node=node, service=service)
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()


@pytest.fixture
def delta():
    """open_stream(attache, node=None, service="ads") -> DeltaStream (incremental
    xDS: DeltaAggregatedResources or a per-type Delta* service)."""
    from delta_client import DeltaStream
    streams = []

    def open_stream(attache, node=None, service="ads"):
        stream = DeltaStream(attache.xds_address, node=node, service=service)
        streams.append(stream)
        return stream

    yield open_stream
    for stream in streams:
        stream.close()
