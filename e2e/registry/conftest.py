"""Fixtures for the registry source tests: a fake legacy registry (the
registration API of Lyft's `discovery` service) on loopback, and raw xDS
streams (the `xds` fixture of e2e/conftest.py)."""
import pytest

from peers.registry import FakeRegistry


@pytest.fixture
def registry():
    """A started FakeRegistry; stop() and start() keep its port."""
    instance = FakeRegistry().start()
    yield instance
    instance.stop()

