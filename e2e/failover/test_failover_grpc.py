"""Proxyless gRPC clients (grpcio and Debian's grpc++ 1.51) placed in r1/zone-a
by their bootstrap's node.locality accept attache's zone-failover view (no
NACK) and fail over the way it ranks endpoints: calls go to zone-a's gRPC
servers, to zone-b's when zone-a turns unhealthy, and back, with no failed
call; attache's /debug/config_dump for the connected node shows the priorities
it serves at each step. Each test runs once per client kind."""
import pytest

from failover_support import Mesh, assert_attache_saw_no_nack, priorities, zone_counts
from peers.grpc_peers import CLUSTER, ENDPOINT, LISTENER, ROUTE
from peers.util import http_get_json

ALL_TYPES = (LISTENER, ROUTE, CLUSTER, ENDPOINT)
TWO_ZONES = {"zone-a": ("r1", 2), "zone-b": ("r1", 2)}


@pytest.fixture(params=["python", "cpp"])
def client_kind(request):
    return request.param


def trailing_run(lines, names):
    """How many lines at the end of lines are one of names."""
    count = 0
    for line in reversed(lines):
        if line not in names:
            break
        count += 1
    return count


def node_view(attache, node_id):
    """The EDS priorities attache serves to a connected node: {zone: priority}."""
    dump = http_get_json(f"{attache.admin_url}/debug/config_dump?node={node_id}")
    (cla,) = dump["resources"][ENDPOINT]["resources"]
    return dump["view"], priorities(cla)


def switch(client, attache, services, new_names, settle=60):
    """Writes the host file while the client calls; waits until the last
    `settle` calls all went to new_names. Returns (mark, first): lines before
    mark predate the edit; lines from first on follow the switch."""
    mark = len(client.snapshot())
    attache.write_hosts(services)
    client.wait_for_replies(
        lambda lines: len(lines) > mark and trailing_run(lines[mark:], new_names) >= settle,
        timeout=30, what=f"{settle} calls in a row answered by {sorted(new_names)}")
    lines = client.snapshot()
    first = next(i for i in range(mark, len(lines)) if lines[i] in new_names)
    return mark, first


def test_grpc_client_fails_over_by_zone_and_back(attache_factory, grpc_server_factory,
                                                 xds_client_factory, client_kind):
    """Two gRPC servers in r1/zone-a and two in r1/zone-b, zone-failover set on
    the service in the host file; the client sits in r1/zone-a."""
    mesh = Mesh(grpc_server_factory, TWO_ZONES, failover="zone-failover")
    attache = attache_factory(mesh.hosts())
    client = xds_client_factory(client_kind, attache, "zone-a", region="r1")
    zone_a, zone_b = mesh.names("zone-a"), mesh.names("zone-b")

    # Home: every call to zone-a, both of its servers used, zone-b untouched.
    client.wait_for_replies(lambda lines: len(lines) >= 60 and zone_a <= set(lines),
                            timeout=30, what="60 calls, both zone-a servers answering")
    lines = client.snapshot()
    assert all(line in zone_a for line in lines), zone_counts(lines)
    assert mesh.hits()["zone-b"] == 0
    entries = assert_attache_saw_no_nack(attache, client.node_id, ALL_TYPES)
    assert {e["view"]["name"] for e in entries} == {"grpc/r1/zone-a"}, entries
    assert node_view(attache, client.node_id)[1] == {"zone-a": 0, "zone-b": 1}
    figures = {"healthy": zone_counts(lines)}

    # zone-a unhealthy (its servers keep running): every call to zone-b.
    mark, first = switch(client, attache, mesh.hosts(unhealthy={"zone-a"}), zone_b)
    lines = client.snapshot()
    assert all(line in zone_a for line in lines[mark:first]), lines[mark:first]
    assert all(line in zone_b for line in lines[first:]), zone_counts(lines[first:])
    assert node_view(attache, client.node_id)[1] == {"zone-b": 0, "zone-a": 1}
    figures["zone-a unhealthy"] = zone_counts(lines[first:])
    hits_a = mesh.hits()["zone-a"]

    # zone-a healthy again: back to zone-a, zone-b no longer called.
    mark, first = switch(client, attache, mesh.hosts(), zone_a)
    lines = client.snapshot()
    assert all(line in zone_b for line in lines[mark:first]), lines[mark:first]
    assert all(line in zone_a for line in lines[first:]), zone_counts(lines[first:])
    assert mesh.hits()["zone-a"] > hits_a
    assert node_view(attache, client.node_id)[1] == {"zone-a": 0, "zone-b": 1}
    figures["healthy again"] = zone_counts(lines[first:])

    assert not client.errors(), client.describe()
    assert client.running(), client.describe()
    assert_attache_saw_no_nack(attache, client.node_id, ALL_TYPES)
    print(f"{client_kind} client in r1/zone-a: {len(client.snapshot())} calls, 0 errors; "
          f"after each switch: {figures}")


def test_grpc_client_weighted_keeps_local_percent(attache_factory, grpc_server_factory,
                                                  xds_client_factory, client_kind):
    """failover: weighted with local_percent 80: the client in r1/zone-a sends
    about 80% of 400 calls to zone-a (65-92%; equal locality weights would
    give 50%) and the rest to zone-b, with no failed call and no NACK."""
    mesh = Mesh(grpc_server_factory, TWO_ZONES, failover="weighted")
    attache = attache_factory(mesh.hosts(), {"defaults": {"local_percent": 80}})
    client = xds_client_factory(client_kind, attache, "zone-a", region="r1", interval_ms=0)
    client.wait_for_replies(lambda lines: len(lines) >= 450, timeout=60, what="450 calls")
    view, held = node_view(attache, client.node_id)
    assert view["name"] == "grpc/r1/zone-a" and held == {"zone-a": 0, "zone-b": 0}
    # The first calls may predate the connections to every server: skip 50.
    lines = client.snapshot()[50:450]
    counts = zone_counts(lines)
    share = counts.get("zone-a", 0) / len(lines)
    assert not client.errors(), client.describe()
    assert 0.65 <= share <= 0.92, counts
    assert counts.get("zone-b", 0) > 0, counts
    assert_attache_saw_no_nack(attache, client.node_id, ALL_TYPES)
    print(f"weighted, {client_kind} client in r1/zone-a: {counts} over {len(lines)} calls "
          f"({share:.0%} local)")
