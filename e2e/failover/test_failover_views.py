"""What attache says a client's view is, checked against what clients receive.

`attache dump --region R --zone Z` and the admin port's
/debug/config_dump?node=<id> must show the view (flavor, region, zone) and
exactly the resources a node in that place gets on the wire: raw ADS streams
(official xds-protos schemas) and a real Envoy are the witnesses. The
endpoints here are loopback addresses used as data only: nothing connects to
them."""
import json
import os
import pathlib
import subprocess

from google.protobuf import json_format

from ads_client import MESSAGE_CLASS, by_name, envoy_node, grpc_node
from failover_support import locality_weights, priorities, wait_for_envoy_priorities
from peers.grpc_peers import CLUSTER, ENDPOINT, LISTENER, ROUTE
from peers.util import endpoints, http_get, http_get_json, wait_until

ATTACHE_BIN = os.environ.get(
    "ATTACHE_BIN", str(pathlib.Path(__file__).resolve().parents[2] / "build" / "attache"))
ZONE_FAILOVER = {"defaults": {"failover": "zone-failover", "local_percent": 80}}


def services(unhealthy=()):
    """echo (zone-failover by default) over three zones in two regions, and
    search (failover: weighted) over two zones of r1. Ports are data only."""
    def place(ports, region, zone):
        fields = {"region": region, "zone": zone}
        if zone in unhealthy:
            fields["health"] = "unhealthy"
        return endpoints(*ports, **fields)
    return {
        "echo": {"endpoints": place((9101, 9102), "r1", "zone-a")
                 + place((9111, 9112), "r1", "zone-b")
                 + place((9121,), "r2", "zone-c")},
        "search": {"failover": "weighted",
                   "endpoints": place((9201,), "r1", "zone-a") + place((9211,), "r1", "zone-b")},
    }


def placed_node(make, node_id, region, zone):
    node = make(node_id=node_id, cluster="e2e", zone=zone)
    node.locality.region = region
    return node


def run_dump(attache, *args):
    result = subprocess.run([ATTACHE_BIN, "dump", "-c", str(attache.config_path), *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def dumped(dump, type_url):
    """(version_info, {name: message}) of one type in a dump (CLI or admin)."""
    entry = dump["resources"][type_url]
    decoded = {}
    for item in entry["resources"]:
        item = dict(item)
        assert item.pop("@type") == type_url
        message = json_format.ParseDict(item, MESSAGE_CLASS[type_url]())
        decoded[message.cluster_name if type_url == ENDPOINT else message.name] = message
    return entry["version_info"], decoded


def receive(stream, with_listeners=False):
    """What a fresh stream receives, subscribing the way the client would:
    {type_url: (version_info, {name: message})}."""
    state = {}
    clusters = stream.subscribe(CLUSTER)
    state[CLUSTER] = (clusters.version_info, by_name(clusters))
    assignments = stream.subscribe(ENDPOINT, sorted(state[CLUSTER][1]))
    state[ENDPOINT] = (assignments.version_info, by_name(assignments))
    if with_listeners:
        listeners = stream.subscribe(LISTENER)
        state[LISTENER] = (listeners.version_info, by_name(listeners))
        routes = stream.subscribe(ROUTE, sorted(state[LISTENER][1]))
        state[ROUTE] = (routes.version_info, by_name(routes))
    return state


def assert_dump_is_wire(dump, wire):
    for type_url, (version, resources) in wire.items():
        assert resources, type_url  # something to compare
        assert dumped(dump, type_url) == (version, resources), type_url


def config_dump_of(attache, node_id):
    return http_get_json(f"{attache.admin_url}/debug/config_dump?node={node_id}")


def test_dump_cli_shows_the_view_and_its_priorities(attache_factory, xds):
    """`attache dump --node-id x --zone zone-a --region r1` names the view and
    ranks echo's zones for it (zone-a 0, zone-b 1, zone-c 2) and gives search
    (weighted) 8000/2000 locality weights; it is byte for byte what a node
    placed there receives from a running attache. Other places rank
    differently, and a node without a place gets one level."""
    attache = attache_factory(services(), ZONE_FAILOVER)

    dump = run_dump(attache, "--node-id", "x", "--zone", "zone-a", "--region", "r1")
    assert dump["view"] == {"name": "envoy/r1/zone-a", "flavor": "envoy",
                            "region": "r1", "zone": "zone-a"}
    _, clas = dumped(dump, ENDPOINT)
    assert priorities(clas["echo"]) == {"zone-a": 0, "zone-b": 1, "zone-c": 2}
    assert priorities(clas["search"]) == {"zone-a": 0, "zone-b": 0}
    assert locality_weights(clas["search"]) == {"zone-a": 8000, "zone-b": 2000}
    _, clusters = dumped(dump, CLUSTER)
    assert clusters["search"].common_lb_config.HasField("locality_weighted_lb_config")
    assert not clusters["echo"].common_lb_config.HasField("locality_weighted_lb_config")
    wire = receive(xds(attache, placed_node(envoy_node, "x", "r1", "zone-a")))
    assert_dump_is_wire(dump, wire)

    # Elsewhere, elsewhere ranked.
    for region, zone, expected_echo, expected_search in (
            ("r1", "zone-b", {"zone-b": 0, "zone-a": 1, "zone-c": 2},
             {"zone-b": 8000, "zone-a": 2000}),
            ("r2", "zone-c", {"zone-c": 0, "zone-a": 1, "zone-b": 1},
             {"zone-a": 1, "zone-b": 1})):
        dump = run_dump(attache, "--node-id", "y", "--zone", zone, "--region", region)
        assert dump["view"]["name"] == f"envoy/{region}/{zone}"
        _, clas = dumped(dump, ENDPOINT)
        assert priorities(clas["echo"]) == expected_echo, zone
        assert locality_weights(clas["search"]) == expected_search, zone

    # A gRPC node in r1/zone-a: its own view, listeners and routes, same ranking.
    dump = run_dump(attache, "--node-id", "g", "--zone", "zone-a", "--region", "r1",
                    "--user-agent", "gRPC C-core")
    assert dump["view"] == {"name": "grpc/r1/zone-a", "flavor": "grpc",
                            "region": "r1", "zone": "zone-a"}
    assert priorities(dumped(dump, ENDPOINT)[1]["echo"]) == {"zone-a": 0, "zone-b": 1,
                                                            "zone-c": 2}
    wire = receive(xds(attache, placed_node(grpc_node, "g", "r1", "zone-a")),
                   with_listeners=True)
    assert_dump_is_wire(dump, wire)

    # No place: one level for zone-failover, plain proportions for weighted.
    dump = run_dump(attache, "--node-id", "z")
    assert dump["view"]["name"] == "envoy"
    _, clas = dumped(dump, ENDPOINT)
    assert priorities(clas["echo"]) == {"zone-a": 0, "zone-b": 0, "zone-c": 0}
    assert locality_weights(clas["search"]) == {"zone-a": 1, "zone-b": 1}


def test_debug_config_dump_of_a_connected_node_is_what_it_receives(attache_factory, xds):
    """/debug/config_dump?node=<id> for connected raw ADS clients (an Envoy
    node in r1/zone-a, a gRPC node in r1/zone-a, an Envoy node placed only by
    its attache.io/region and attache.io/zone metadata in r1/zone-b) shows
    their view and the exact resources and versions each received, before
    and after zone-a turns unhealthy."""
    attache = attache_factory(services(), ZONE_FAILOVER)
    envoy_a = xds(attache, placed_node(envoy_node, "raw-envoy-a", "r1", "zone-a"))
    grpc_a = xds(attache, placed_node(grpc_node, "raw-grpc-a", "r1", "zone-a"))
    by_metadata = envoy_node(node_id="raw-envoy-meta", cluster="e2e", zone="")
    by_metadata.ClearField("locality")
    by_metadata.metadata.update({"attache.io/region": "r1", "attache.io/zone": "zone-b"})
    envoy_b = xds(attache, by_metadata)

    clients = {
        "raw-envoy-a": (envoy_a, False, "envoy/r1/zone-a", {"zone-a": 0, "zone-b": 1, "zone-c": 2}),
        "raw-grpc-a": (grpc_a, True, "grpc/r1/zone-a", {"zone-a": 0, "zone-b": 1, "zone-c": 2}),
        "raw-envoy-meta": (envoy_b, False, "envoy/r1/zone-b",
                           {"zone-b": 0, "zone-a": 1, "zone-c": 2}),
    }
    wires = {}
    for node_id, (stream, with_listeners, view, expected) in clients.items():
        wires[node_id] = wire = receive(stream, with_listeners)
        assert priorities(wire[ENDPOINT][1]["echo"]) == expected, node_id
        dump = config_dump_of(attache, node_id)
        assert dump["view"]["name"] == view, dump["view"]
        assert dump["node"]["id"] == node_id
        assert_dump_is_wire(dump, wire)
    views = {v["name"]: v["clients"] for v in http_get_json(attache.admin_url + "/debug/views")}
    assert views == {"envoy/r1/zone-a": ["raw-envoy-a"], "grpc/r1/zone-a": ["raw-grpc-a"],
                     "envoy/r1/zone-b": ["raw-envoy-meta"]}, views

    # zone-a unhealthy: each node gets a new assignment, and the dump follows.
    attache.write_hosts(services(unhealthy={"zone-a"}))
    after = {"raw-envoy-a": {"zone-b": 0, "zone-c": 1, "zone-a": 2},
             "raw-grpc-a": {"zone-b": 0, "zone-c": 1, "zone-a": 2},
             "raw-envoy-meta": {"zone-b": 0, "zone-c": 1, "zone-a": 2}}
    for node_id, (stream, _, _, _) in clients.items():
        response, _ = stream.recv_until(
            lambda r: r.type_url == ENDPOINT
            and priorities(by_name(r)["echo"]) == after[node_id])
        wire = dict(wires[node_id])
        wire[ENDPOINT] = (response.version_info, by_name(response))
        assert_dump_is_wire(config_dump_of(attache, node_id), wire)

    status, _ = http_get(f"{attache.admin_url}/debug/config_dump?node=nobody")
    assert status == 404


def test_debug_config_dump_matches_a_real_envoy(attache_factory, envoy_factory):
    """For a real Envoy in r1/zone-b, /debug/config_dump?node=<its id> shows
    view envoy/r1/zone-b and the clusters Envoy holds (equal protos), and
    the localities, priorities, weights and ports of its endpoints."""
    attache = attache_factory(services(), ZONE_FAILOVER)
    envoy = envoy_factory(attache, "zone-b", region="r1")
    wait_for_envoy_priorities(envoy, {"zone-b": 0, "zone-a": 1, "zone-c": 2})
    wait_until(lambda: {"echo", "search"} <= set(envoy.dynamic_clusters()),
               what="clusters echo and search in envoy")
    dump = config_dump_of(attache, envoy.node_id)
    assert dump["view"] == {"name": "envoy/r1/zone-b", "flavor": "envoy",
                            "region": "r1", "zone": "zone-b"}

    version, clusters = dumped(dump, CLUSTER)
    held = {}
    for name, entry in envoy.dynamic_clusters().items():
        held[name] = json_format.ParseDict(entry["cluster"], MESSAGE_CLASS[CLUSTER](),
                                           ignore_unknown_fields=True)
        assert entry["version_info"] == version, (name, entry["version_info"], version)
    assert held == clusters

    _, clas = dumped(dump, ENDPOINT)
    for name in ("echo", "search"):
        entry = envoy.endpoint_configs()[name]["endpoint_config"]
        assert priorities(entry) == priorities(clas[name]), name
        assert locality_weights(entry) == locality_weights(clas[name]), name
    assert locality_weights(clas["search"]) == {"zone-b": 8000, "zone-a": 2000}
