"""Fixtures for the wire-level xDS conformance suite.

The attache process (`attache_factory`) and raw state-of-the-world streams
(`xds`) come from e2e/conftest.py; this file adds incremental ones.
"""
import pytest


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
