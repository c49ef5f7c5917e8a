"""Checklist section D, items 36-37: resource TTLs and heartbeats.

attache runs with `xds.resource_ttl: 2s` and `xds.heartbeat: 500ms`, so one
second of silence spans two heartbeat ticks: a quiet window of a second
means something only because the heartbeat loop provably ran during it (a
control stream with the feature receives heartbeats from the same loop).
"""
import pytest
from google.protobuf import duration_pb2

from ads_client import (CLUSTER, ENDPOINT, LISTENER, ROUTE, by_name, envoy_node, grpc_node)
from delta_client import (RESOURCE_IN_SOTW_FEATURE, RESOURCE_TYPE, TTL_FEATURE, decode,
                          describe, is_heartbeat, removed, resources_of, versions,
                          wrapped_resources)
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from peers.util import http_get_json
from support import catalog, with_changes
# The catalog of the delta size test (this folder is on sys.path under pytest).
from test_c_delta import small_assignments_host_file

TTL = duration_pb2.Duration(seconds=2)
TTL_CONFIG = {"xds": {"listen": "127.0.0.1:0", "resource_ttl": "2s", "heartbeat": "500ms"}}
TICKS = 1.0  # two heartbeat intervals


def with_features(node, *features):
    node.client_features.extend(features)
    return node


def grpc_core_node(node_id, *features):
    node = base_pb2.Node(id=node_id, cluster="conformance", user_agent_name="gRPC C-core",
                         user_agent_version="1.51.1")
    node.locality.zone = "zone-a"
    node.client_features.extend(features)
    return node


def client_entry(attache, node_id):
    clients = http_get_json(attache.admin_url + "/debug/clients")
    if isinstance(clients, dict):
        clients = clients.get("clients", [])
    mine = [c for c in clients if c.get("node_id") == node_id]
    assert len(mine) == 1, f"/debug/clients lists node {node_id!r} {len(mine)} times"
    return mine[0]


def assert_ttl(response, expected=TTL):
    for name, resource in wrapped_resources(response).items():
        if expected is None:
            assert not resource.HasField("ttl"), f"{name} has a ttl: {describe(response)}"
        else:
            assert resource.HasField("ttl") and resource.ttl == expected, \
                f"{name}: ttl {resource.ttl if resource.HasField('ttl') else None}, " \
                f"expected {expected}: {describe(response)}"


def next_heartbeat(stream, type_url):
    """Receives (and ACKs) responses of type_url until a heartbeat; returns it."""
    response, _ = stream.recv_until(lambda r: r.type_url == type_url and is_heartbeat(r))
    return response


@pytest.fixture
def ttl_attache(attache_factory):
    return attache_factory(catalog("alpha", "beta"), extra_config=TTL_CONFIG)


# --- 36 ------------------------------------------------------------------------
def test_d36_delta_client_with_ttl_feature_gets_ttl_and_heartbeats(ttl_attache, delta):
    """D36: "Resource.ttl only for clients whose node.client_features include
    `xds.config.supports-resource-ttl`" (with it: every Resource carries the
    TTL; once the client ACKed, heartbeats refresh what it holds: Resources
    with name and version and no body)."""
    attache = ttl_attache
    stream = delta(attache, with_features(envoy_node("ttl-envoy"), TTL_FEATURE))
    cds = stream.subscribe(CLUSTER, [], ack=False)
    assert set(resources_of(cds)) == {"alpha", "beta"}, describe(cds)
    assert_ttl(cds)
    assert client_entry(attache, "ttl-envoy")["ttl_ms"] == 2000
    # Not ACKed yet: no heartbeat for CDS (a heartbeat is a response like any other).
    stream.expect_nothing(CLUSTER, timeout=TICKS)
    stream.ack(cds)

    heartbeats = []
    for _ in range(2):
        heartbeat = stream.recv(CLUSTER)
        assert is_heartbeat(heartbeat), f"expected a heartbeat: {describe(heartbeat)}"
        assert versions(heartbeat) == versions(cds), describe(heartbeat)
        assert not removed(heartbeat)
        assert_ttl(heartbeat)
        stream.ack(heartbeat)
        heartbeats.append(heartbeat)
    nonces = [cds.nonce] + [h.nonce for h in heartbeats]
    assert len(set(nonces)) == 3 and all(nonces), nonces

    # EDS too, for what the client holds of it only.
    eds = stream.subscribe(ENDPOINT, ["alpha"])
    assert_ttl(eds)
    heartbeat = next_heartbeat(stream, ENDPOINT)
    assert versions(heartbeat) == versions(eds), describe(heartbeat)
    assert_ttl(heartbeat)

    # A real change still comes with its body (and the TTL).
    attache.write_hosts(with_changes(catalog("alpha", "beta"), gamma=catalog("gamma")["gamma"]))
    update, _ = stream.recv_until(lambda r: r.type_url == CLUSTER and not is_heartbeat(r))
    assert set(resources_of(update)) == {"gamma"}, describe(update)
    assert_ttl(update)
    heartbeat = next_heartbeat(stream, CLUSTER)
    assert set(versions(heartbeat)) == {"alpha", "beta", "gamma"}, describe(heartbeat)


def test_d36_heartbeats_refresh_the_version_kept_after_a_nack(ttl_attache, delta):
    """D36 with C27: after a NACK the client still holds the version before the
    rejected one. Heartbeats must refresh that one (or the cluster expires one
    TTL after a rejected update) and never name the rejected version (Envoy
    would take a body-less Resource with an unknown version as an update)."""
    attache = ttl_attache
    stream = delta(attache, with_features(envoy_node("ttl-nack"), TTL_FEATURE))
    accepted = stream.subscribe(CLUSTER, [])
    kept = versions(accepted)
    assert set(kept) == {"alpha", "beta"}
    services = catalog("alpha", "beta")
    services["alpha"]["lb_policy"] = "RING_HASH"
    attache.write_hosts(services)
    rejected, _ = stream.recv_until(lambda r: r.type_url == CLUSTER and not is_heartbeat(r),
                                    ack=False)
    while True:  # heartbeats that were already in flight are ACKed as usual
        if not is_heartbeat(rejected):
            break
        stream.ack(rejected)
        rejected = stream.recv(CLUSTER)
    assert set(resources_of(rejected)) == {"alpha"}, describe(rejected)
    bad_version = versions(rejected)["alpha"]
    assert bad_version != kept["alpha"]
    stream.nack(rejected, "the test rejects RING_HASH")
    for _ in range(2):
        heartbeat = next_heartbeat(stream, CLUSTER)
        assert bad_version not in versions(heartbeat).values(), describe(heartbeat)
        assert versions(heartbeat) == kept, describe(heartbeat)


def test_d36_delta_client_without_the_feature_gets_no_ttl_and_no_heartbeats(ttl_attache,
                                                                             delta):
    """D36: no TTL (and so no heartbeats) for a client without
    `xds.config.supports-resource-ttl`."""
    attache = ttl_attache
    plain = delta(attache, envoy_node("plain-envoy"))
    for type_url, names in ((CLUSTER, []), (ENDPOINT, ["alpha", "beta"])):
        response = plain.subscribe(type_url, names)
        assert set(resources_of(response)) == {"alpha", "beta"}, describe(response)
        assert_ttl(response, None)
    assert client_entry(attache, "plain-envoy")["ttl_ms"] == 0

    # Control: the heartbeat loop runs (a client with the feature gets them).
    control = delta(attache, with_features(envoy_node("control"), TTL_FEATURE))
    control.subscribe(CLUSTER, [])
    next_heartbeat(control, CLUSTER)
    plain.expect_nothing(timeout=TICKS)


def test_d36_no_ttl_unless_configured(attache_factory, delta):
    """D36 (attache's configuration): without `xds.resource_ttl` nobody gets a
    TTL or heartbeats, whatever the client supports."""
    attache = attache_factory(catalog("alpha"))
    stream = delta(attache, with_features(envoy_node("ttl-envoy"), TTL_FEATURE))
    response = stream.subscribe(CLUSTER, [])
    assert set(resources_of(response)) == {"alpha"}
    assert_ttl(response, None)
    assert client_entry(attache, "ttl-envoy")["ttl_ms"] == 0
    stream.expect_nothing(timeout=TICKS)


def unwrap_sotw(response):
    """{name: Resource} of an SotW response whose Anys all wrap a Resource."""
    result = {}
    for any_ in response.resources:
        assert any_.type_url == RESOURCE_TYPE, \
            f"an Any of {any_.type_url!r}, expected a wrapping Resource"
        resource = discovery_pb2.Resource()
        resource.ParseFromString(any_.value)
        assert resource.name and resource.version, resource
        assert resource.HasField("resource"), f"{resource.name} has no body"
        assert resource.resource.type_url == response.type_url, resource.resource.type_url
        message = decode(resource.resource, response.type_url)
        name = message.cluster_name if response.type_url == ENDPOINT else message.name
        assert name == resource.name, (name, resource.name)
        assert resource.name not in result
        result[resource.name] = resource
    return result


def test_d36_sotw_wraps_in_resource_only_for_resource_in_sotw(ttl_attache, xds):
    """D36: "SotW wrapping in Resource only for `xds.config.resource-in-sotw`."
    (with both features: every Any is a Resource with the TTL around the
    resource; with the TTL feature only: plain resources)"""
    attache = ttl_attache
    wrapped = xds(attache, with_features(envoy_node("sotw-wrapped"), TTL_FEATURE,
                                         RESOURCE_IN_SOTW_FEATURE))
    plain = xds(attache, with_features(envoy_node("sotw-plain"), TTL_FEATURE))
    for type_url, names in ((CLUSTER, []), (ENDPOINT, ["alpha", "beta"])):
        response = wrapped.subscribe(type_url, names)
        assert response.type_url == type_url
        resources = unwrap_sotw(response)
        assert set(resources) == {"alpha", "beta"}
        for name, resource in resources.items():
            assert resource.HasField("ttl") and resource.ttl == TTL, (name, resource.ttl)

        response = plain.subscribe(type_url, names)
        assert set(by_name(response, type_url)) == {"alpha", "beta"}  # Anys of the type


def test_d36_sotw_heartbeats_resend_what_the_client_holds(ttl_attache, xds):
    """D36 for state of the world (as documented in docs/xds.md): a client with
    TTLs in SotW gets, once it ACKed, its resources again (wrapped, with bodies,
    the TTL and the same version_info); a client without resource-in-sotw has no
    TTLs to refresh and gets nothing."""
    attache = ttl_attache
    wrapped = xds(attache, with_features(envoy_node("sotw-wrapped"), TTL_FEATURE,
                                         RESOURCE_IN_SOTW_FEATURE))
    plain = xds(attache, with_features(envoy_node("sotw-plain"), TTL_FEATURE))
    first = wrapped.subscribe(CLUSTER, [], ack=False)
    plain.subscribe(CLUSTER, [])
    wrapped.expect_nothing(CLUSTER, timeout=TICKS)  # not before the ACK
    wrapped.ack(first)
    for _ in range(2):
        again = wrapped.recv(CLUSTER)
        wrapped.ack(again)
        assert again.version_info == first.version_info and again.nonce != first.nonce
        resources = unwrap_sotw(again)
        assert resources == unwrap_sotw(first), "a heartbeat changed the resources"
        assert all(r.ttl == TTL for r in resources.values())
    plain.expect_nothing(timeout=TICKS)


@pytest.mark.parametrize("flavour", ["grpc", "grpc-core"])
def test_d37_grpc_clients_never_get_ttls_or_heartbeats(ttl_attache, delta, xds, flavour):
    """D37: "Never send heartbeats (Resource without body) to gRPC clients."
    (even with `xds.config.supports-resource-ttl`; a gRPC client is recognised
    by its client feature or by its user agent; and no TTLs nor wrapping on
    state of the world either)"""
    attache = ttl_attache
    node_id = f"{flavour}-with-ttl"
    if flavour == "grpc":
        node = with_features(grpc_node(node_id), TTL_FEATURE, RESOURCE_IN_SOTW_FEATURE)
    else:
        node = grpc_core_node(node_id, TTL_FEATURE, RESOURCE_IN_SOTW_FEATURE)
    stream = delta(attache, node)
    for type_url in (LISTENER, ROUTE, CLUSTER, ENDPOINT):
        response = stream.subscribe(type_url, ["alpha"])
        assert set(resources_of(response)) == {"alpha"}, describe(response)
        assert_ttl(response, None)
    assert client_entry(attache, node_id)["ttl_ms"] == 0

    control = delta(attache, with_features(envoy_node("control"), TTL_FEATURE))
    control.subscribe(CLUSTER, [])
    next_heartbeat(control, CLUSTER)
    stream.expect_nothing(timeout=TICKS)

    sotw_node = base_pb2.Node()
    sotw_node.CopyFrom(node)
    sotw_node.id = node_id + "-sotw"
    sotw = xds(attache, sotw_node)
    response = sotw.subscribe(CLUSTER, ["alpha"])
    assert set(by_name(response, CLUSTER)) == {"alpha"}  # plain Anys, not Resources


def test_d36_wrapped_sotw_responses_stay_under_4_mib(attache_factory, xds):
    """D36 with A19: wrapping every resource in a Resource (an Any of its own,
    the name, the version and the TTL) must not push a state-of-the-world
    response over 4 MiB when the resources are many and small."""
    from test_c_delta import small_assignments_host_file
    service_count, per_service = 6000, 24
    attache = attache_factory({"placeholder": {"endpoints": []}}, extra_config=TTL_CONFIG,
                              start=False)
    attache.write_hosts_text(small_assignments_host_file(service_count, per_service))
    attache.start()
    all_names = [f"svc-{service:05d}" for service in range(service_count)]
    stream = xds(attache, with_features(envoy_node("sotw-big"), TTL_FEATURE,
                                        RESOURCE_IN_SOTW_FEATURE))
    stream.send(ENDPOINT, all_names)
    got, sizes = set(), []
    while got != set(all_names):
        response = stream.recv(ENDPOINT, timeout=30)
        stream.ack(response)
        sizes.append(response.ByteSize())
        got |= set(unwrap_sotw(response))
    too_big = [size for size in sizes if size >= 4 * 1024 * 1024]
    assert not too_big, f"responses of {too_big} bytes (limit {4 * 1024 * 1024}); all: {sizes}"
