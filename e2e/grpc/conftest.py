"""Fixtures for the proxyless gRPC end-to-end tests: gRPC echo servers on
127.0.0.1 and xDS clients (Python grpcio and Debian's grpc++ 1.51), each client
a process of its own with its own A27 bootstrap. attache_factory comes from
e2e/conftest.py."""
import uuid

import pytest

from peers.grpc_peers import GrpcEchoServer, XdsClient, write_bootstrap
from peers.util import stopping_factory, tail


@pytest.fixture
def grpc_server_factory():
    """make(name) -> GrpcEchoServer answering `name`; all stopped at teardown."""
    yield from stopping_factory(GrpcEchoServer)


@pytest.fixture(params=["python", "cpp"])
def client_kind(request):
    """Every gRPC test runs with both proxyless clients."""
    return request.param


@pytest.fixture
def xds_client_factory(tmp_path, request):
    """make(kind, attache, target, count=0) -> a running XdsClient process with a
    bootstrap of its own (unique node id, in client.node_id)."""
    made = []

    def make(kind, attache, target="xds:///echo", count=0, interval_ms=10, max_seconds=120):
        workdir = tmp_path / f"client{len(made)}"
        workdir.mkdir()
        node_id = f"grpc-{kind}-{uuid.uuid4().hex[:10]}"
        bootstrap = write_bootstrap(workdir / "bootstrap.json", attache.xds_port, node_id)
        client = XdsClient(kind, bootstrap, target, workdir, count=count,
                           interval_ms=interval_ms, max_seconds=max_seconds)
        client.node_id = node_id
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for client in made:
            print(f"--- {client.kind} client {client.node_id} ---\n{client.describe()}")
        for log in sorted(tmp_path.glob("attache*/attache.log")):
            print(f"--- tail of {log} ---\n{tail(log, 60)}")
