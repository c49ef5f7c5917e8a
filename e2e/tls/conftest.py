"""Fixtures for the TLS tests: a throwaway PKI per test (tls_support.py),
attache serving xDS over TLS or mutual TLS, real Envoys whose xds_cluster talks
TLS to it, HTTP backends and proxyless gRPC peers. attache_factory comes from
e2e/conftest.py. Everything listens on 127.0.0.1."""
import uuid

import pytest

from peers.backends import HttpBackend
from peers.envoy import Envoy
from peers.grpc_peers import GrpcEchoServer
from peers.util import endpoints, stopping_factory, tail
from tls_support import Pki


@pytest.fixture
def pki(tmp_path):
    """pki.ca(name) -> a CA (made on first use) that issues server and client
    certificates: ca.issue_server(), ca.issue_client(name)."""
    return Pki(tmp_path / "pki")


@pytest.fixture
def tls_attache(attache_factory):
    """make(tls, services=None, start=True) -> attache with xds.tls = tls
    (see tls_config); services default to one service "echo"."""

    def make(tls, services=None, start=True):
        if services is None:
            services = {"echo": {"endpoints": endpoints(8081)}}
        return attache_factory(services, {"xds": {"listen": "127.0.0.1:0", "tls": tls}},
                               start=start)

    return make


@pytest.fixture
def backend_factory():
    yield from stopping_factory(HttpBackend)


@pytest.fixture
def grpc_server_factory():
    yield from stopping_factory(GrpcEchoServer)


@pytest.fixture
def tls_envoy_factory(tmp_path, request):
    """make(attache, tls, wait_ready=True) -> a started Envoy whose xds_cluster
    talks TLS to attache: tls = {"ca": ..., "cert": ..., "key": ...} (see
    peers/envoy.py bootstrap)."""
    made = []

    def make(attache, tls, wait_ready=True, timeout=30):
        envoy = Envoy(tmp_path / f"envoy{len(made)}", attache.xds_port, "echo",
                      node_id=f"envoy-tls-{uuid.uuid4().hex[:10]}", tls=tls)
        made.append(envoy)
        return envoy.start(wait_ready=wait_ready, timeout=timeout)

    yield make
    for envoy in made:
        envoy.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for envoy in made:
            print(f"--- tail of {envoy.log_path} ---\n{tail(envoy.log_path, 40)}")


@pytest.fixture(autouse=True)
def attache_logs_on_failure(tmp_path, request):
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for log in sorted(tmp_path.glob("attache*/attache.log")):
            print(f"--- tail of {log} ---\n{tail(log, 60)}")
