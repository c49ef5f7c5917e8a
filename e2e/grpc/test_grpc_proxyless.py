"""Proxyless gRPC clients (Python grpcio and Debian's grpc++ 1.51) dial
xds:///echo through attache: LDS -> RDS -> CDS -> EDS, then real unary calls to
gRPC servers on 127.0.0.1. Each test runs once per client kind."""
import pytest

from peers.grpc_peers import (CLUSTER, ENDPOINT, LISTENER, ROUTE, clients_of_node,
                              debug_clients, nacks)
from peers.util import endpoints, wait_until

ALL_TYPES = {LISTENER, ROUTE, CLUSTER, ENDPOINT}


def assert_no_nack(attache, client):
    """attache's /debug/clients lists this client's node with all four types
    and nack_count 0 for every one of them."""
    def seen_with_all_types():
        found = clients_of_node(attache.admin_url, client.node_id)
        return [c for c in found if ALL_TYPES <= set(c.get("types", {}))]
    try:
        entries = wait_until(seen_with_all_types, timeout=10,
                             what=f"attache's /debug/clients to list {client.node_id} "
                                  "with LDS, RDS, CDS and EDS")
    except AssertionError as error:
        raise AssertionError(f"{error}\n/debug/clients: "
                             f"{debug_clients(attache.admin_url)}") from None
    for entry in entries:
        for type_url, state in entry["types"].items():
            assert "nack_count" in state, (type_url, state)
        assert not nacks(entry), f"{client.kind} client NACKed: {entry}"


def trailing_run(lines, name):
    """How many lines at the end of lines are exactly name."""
    count = 0
    for line in reversed(lines):
        if line != name:
            break
        count += 1
    return count


def test_xds_target_resolves_and_calls_reach_server(attache_factory, grpc_server_factory,
                                                     xds_client_factory, client_kind):
    """xds:///echo resolves through attache and every call reaches the one
    server of the host file; the client accepts every resource."""
    server = grpc_server_factory("grpc-a")
    attache = attache_factory({"echo": {"endpoints": endpoints(server.port)}})
    client = xds_client_factory(client_kind, attache, "xds:///echo")

    client.wait_for_replies(lambda lines: len(lines) >= 10, timeout=30,
                            what="10 calls through xds:///echo")
    assert_no_nack(attache, client)
    lines = client.snapshot()
    assert lines and all(line == "grpc-a" for line in lines), client.describe()
    assert server.calls >= 10
    assert client.running(), client.describe()


@pytest.mark.parametrize("locality", [{}, {"region": "r1", "zone": "zone-1"}],
                         ids=["no_locality", "zone"])
def test_removing_an_endpoint_moves_all_calls_to_the_other(attache_factory, grpc_server_factory,
                                                           xds_client_factory, client_kind,
                                                           locality):
    """With two servers the client spreads calls over both; after one is removed
    from the host file every call goes to the remaining one, with no failed call.
    Endpoints without any locality fields are the host file's minimal form."""
    a, b = grpc_server_factory("grpc-a"), grpc_server_factory("grpc-b")
    attache = attache_factory({"echo": {"endpoints": endpoints(a.port, b.port, **locality)}})
    client = xds_client_factory(client_kind, attache, "xds:///echo")

    client.wait_for_replies(lambda lines: {"grpc-a", "grpc-b"} <= set(lines), timeout=30,
                            what="calls answered by both grpc-a and grpc-b")
    mark = len(client.snapshot())
    attache.write_hosts({"echo": {"endpoints": endpoints(a.port, **locality)}})

    # b keeps running: only the host file says not to use it.
    client.wait_for_replies(lambda lines: len(lines) > mark and trailing_run(lines, "grpc-a") >= 50,
                            timeout=30, what="50 calls in a row answered by grpc-a")
    settled = len(client.snapshot())
    b_calls = b.calls
    client.wait_for_replies(lambda lines: len(lines) >= settled + 50, timeout=30,
                            what="50 more calls")
    lines = client.snapshot()
    assert all(line == "grpc-a" for line in lines[settled:]), lines[settled:]
    assert b.calls == b_calls, "grpc-b still got calls after it left the host file"
    assert not [line for line in lines if line.startswith("ERROR")], client.describe()
    assert_no_nack(attache, client)


def test_adding_an_endpoint_brings_calls_to_it(attache_factory, grpc_server_factory,
                                               xds_client_factory, client_kind):
    """A server added to the host file starts getting calls from a client that
    is already running, without any failed call."""
    a, b = grpc_server_factory("grpc-a"), grpc_server_factory("grpc-b")
    attache = attache_factory({"echo": {"endpoints": endpoints(a.port, zone="zone-1")}})
    client = xds_client_factory(client_kind, attache, "xds:///echo")

    client.wait_for_replies(lambda lines: lines.count("grpc-a") >= 10, timeout=30,
                            what="10 calls answered by grpc-a")
    assert b.calls == 0
    # b arrives in a second locality (zone-2) of the same priority.
    attache.write_hosts({"echo": {"endpoints": endpoints(a.port, zone="zone-1")
                                  + endpoints(b.port, zone="zone-2")}})
    client.wait_for_replies(lambda lines: "grpc-b" in lines, timeout=30,
                            what="a call answered by grpc-b")
    assert b.calls > 0
    assert not client.errors(), client.describe()
    assert_no_nack(attache, client)
