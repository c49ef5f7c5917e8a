"""Checklist section C, items 25-35: the incremental (delta) protocol.

Each test quotes its item (shared/xds-checklist.md) and drives attache with
exactly the DeltaDiscoveryRequests the item is about, on
DeltaAggregatedResources unless it says otherwise. Absence of a response is
asserted only after the server provably processed what could have caused one
(a response on the same stream, or a witness stream that saw the edit).
"""
import uuid

import grpc
import pytest
import yaml

from ads_client import ALL_TYPES, SERVICE_TYPE, SHORT, envoy_node, grpc_node
from delta_client import (CLUSTER, ENDPOINT, LISTENER, ROUTE, WILDCARD, describe, removed,
                          resources_of, versions, wrapped_resources)
from envoy.config.core.v3 import base_pb2
from peers.util import http_get_json
from support import (Witness, catalog, collect_types, endpoint_ports, moved, wait_until,
                     with_changes)

SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
GRPC_ORDER = (LISTENER, ROUTE, CLUSTER, ENDPOINT)  # the order a gRPC client subscribes
EVERY_TYPE = [pytest.param(t, id=SHORT[t]) for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE)]


def grpc_core_node(node_id="grpc-core-test", zone="zone-a"):
    """A node as gRPC C-core sends it: flavour from user_agent_name alone."""
    node = base_pb2.Node(id=node_id, cluster="conformance", user_agent_name="gRPC C-core",
                         user_agent_version="1.51.1")
    node.locality.zone = zone
    return node


def type_state(attache, node_id, type_url):
    """The /debug/clients entry of one type of the (only) stream of node_id."""
    clients = http_get_json(attache.admin_url + "/debug/clients")
    if isinstance(clients, dict):
        clients = clients.get("clients", [])
    mine = [c for c in clients if c.get("node_id") == node_id]
    assert len(mine) == 1, f"/debug/clients lists node {node_id!r} {len(mine)} times"
    assert mine[0].get("protocol") == "delta", mine[0]
    return mine[0]["types"].get(type_url)


def names_of(response):
    return set(wrapped_resources(response))


def subscribe_grpc_style(stream, wanted):
    """LDS, RDS, CDS, EDS for the same names, each answered and ACKed."""
    return {type_url: stream.subscribe(type_url, wanted) for type_url in GRPC_ORDER}


def with_lb(service, policy):
    changed = dict(service)
    changed["lb_policy"] = policy
    return changed


# --- 25 ------------------------------------------------------------------------
def test_c25_every_response_has_nonce_and_type_url(attache_factory, delta):
    """C25: "Every response: non-empty unique nonce, type_url; system_version_info
    is informational." (a gRPC client on delta ADS, initial answers and pushes of
    all four types, additions and removals)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = delta(attache, grpc_node())
    extra = ["g1", "g2", "g3"]
    for type_url, response in subscribe_grpc_style(stream, ["alpha", "beta"] + extra).items():
        assert names_of(response) == {"alpha", "beta"}, describe(response)
        assert removed(response) == set(extra), describe(response)
    for index, name in enumerate(extra):
        services = with_changes(services, **{name: catalog(name, base_port=8000 + 10 * index)[name]})
        attache.write_hosts(services)
        seen = set()
        while seen != set(ALL_TYPES):
            response, _ = stream.recv_until(lambda r: name in wrapped_resources(r))
            seen.add(response.type_url)
    attache.write_hosts(with_changes(services, g1=None))
    seen = set()
    while seen != set(ALL_TYPES):
        response, _ = stream.recv_until(lambda r: "g1" in removed(r))
        seen.add(response.type_url)

    responses = stream.received
    assert len(responses) >= 20, [describe(r) for r in responses]
    for response in responses:
        assert response.type_url in ALL_TYPES, describe(response)
        wrapped_resources(response)  # every Resource decodes as its response's type
    nonces = [r.nonce for r in responses]
    assert all(nonces), "a delta response without nonce"
    duplicates = sorted({n for n in nonces if nonces.count(n) > 1})
    assert not duplicates, f"nonces used twice on one stream: {duplicates}"


@pytest.mark.parametrize("service", ["cds", "eds", "lds", "rds"])
def test_c25_per_type_delta_services_answer_with_their_type(attache_factory, delta, service):
    """C25 on the per-type services (DeltaClusters, DeltaEndpoints,
    DeltaListeners, DeltaRoutes): responses carry the service's type_url and
    nonces, an empty request type_url means the service's type, an ACK is not
    answered, and changes are pushed."""
    attache = attache_factory(catalog("alpha", "beta"))
    type_url = SERVICE_TYPE[service]
    stream = delta(attache, grpc_node(), service=service)
    stream.send("", ["alpha", "gamma"])
    first = stream.recv()
    assert first.type_url == type_url and first.nonce, describe(first)
    assert names_of(first) == {"alpha"} and removed(first) == {"gamma"}, describe(first)
    stream.ack(first, type_url="")
    stream.expect_nothing()
    # A request that names the type explicitly works the same way.
    stream.send(type_url, ["beta"])
    second = stream.recv()
    assert second.type_url == type_url and names_of(second) == {"beta"}, describe(second)
    assert second.nonce and second.nonce != first.nonce
    stream.ack(second)
    # gamma appears: pushed on this stream.
    attache.write_hosts(catalog("alpha", "beta", "gamma"))
    pushed = stream.recv()
    assert pushed.type_url == type_url and "gamma" in names_of(pushed), describe(pushed)
    assert pushed.nonce not in (first.nonce, second.nonce)


WRONG_TYPE = {"cds": ENDPOINT, "eds": CLUSTER, "lds": ROUTE, "rds": LISTENER}


@pytest.mark.parametrize("service", ["cds", "eds", "lds", "rds"])
def test_c25_per_type_delta_service_rejects_another_type(attache_factory, delta, service):
    """As documented for attache (A2): a per-type service answers a request for
    another type by failing the stream with INVALID_ARGUMENT."""
    attache = attache_factory(catalog("alpha"))
    stream = delta(attache, grpc_node(), service=service)
    stream.send(WRONG_TYPE[service], ["alpha"])
    closed = stream.expect_closed()
    assert closed.code == grpc.StatusCode.INVALID_ARGUMENT, closed
    assert all(r.type_url != WRONG_TYPE[service] for r in stream.received)


def test_c25_unknown_type_url_is_ignored(attache_factory, delta):
    """An unknown type_url on delta ADS is ignored: no response, no failure, and
    the node of that (first) request is still bound to the stream."""
    attache = attache_factory(catalog("alpha"))
    stream = delta(attache, grpc_node())
    first = stream.send(SECRET, ["some-secret"])
    assert first.HasField("node")
    stream.expect_nothing()
    later = stream.send(LISTENER, ["alpha"])
    assert not later.HasField("node")
    listeners = resources_of(stream.recv(LISTENER))
    assert set(listeners) == {"alpha"}, "the node-less LDS request was not served " \
        "as the gRPC node of the (ignored) first request"
    stream.ack(stream.received[-1])
    stream.send(SECRET, [], response_nonce="no-such-nonce", error_detail="unknown")
    stream.expect_nothing()


# --- 26 ------------------------------------------------------------------------
def test_c26_resource_versions_equal_across_streams_and_change_iff_content_changes(
        attache_factory, delta):
    """C26: "Each Resource: name, per-resource version that changes iff the
    content changes, resource as an Any of the type." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    one = delta(attache, envoy_node("one"))
    two = delta(attache, envoy_node("two"))
    cds1 = one.subscribe(CLUSTER, [])
    eds1 = one.subscribe(ENDPOINT, ["alpha", "beta"])
    cds_two = two.subscribe(CLUSTER, [WILDCARD])
    eds_two = two.subscribe(ENDPOINT, ["beta", "alpha"])
    for response in (cds1, eds1, cds_two, eds_two):
        assert names_of(response) == {"alpha", "beta"}, describe(response)
        for resource in response.resources:
            assert resource.HasField("resource"), describe(response)
            assert resource.resource.type_url == response.type_url
    # Same content, same versions, whatever the stream; different content
    # (another cluster), another version.
    assert versions(cds1) == versions(cds_two)
    assert versions(eds1) == versions(eds_two)
    assert versions(cds1)["alpha"] != versions(cds1)["beta"]

    # alpha's endpoints move: only alpha's ClusterLoadAssignment changes.
    moved_services = with_changes(services, alpha=moved(services["alpha"], 7001))
    attache.write_hosts(moved_services)
    eds2 = one.recv(ENDPOINT)
    one.ack(eds2)
    assert names_of(eds2) == {"alpha"} and not removed(eds2), describe(eds2)
    assert endpoint_ports(resources_of(eds2)["alpha"]) == [7001]
    assert versions(eds2)["alpha"] != versions(eds1)["alpha"]
    eds2_two = two.recv(ENDPOINT)
    two.ack(eds2_two)
    assert versions(eds2_two) == versions(eds2)
    one.expect_nothing(CLUSTER)

    # The file is rewritten (other order, other layout) with one service more:
    # only gamma is new; nothing else changed, so nothing else is sent.
    changed = with_changes(moved_services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts_text("# rewritten by the conformance suite\n" + yaml.safe_dump(
        {"services": dict(reversed(list(changed.items())))}, sort_keys=False,
        default_flow_style=True))
    cds2 = one.recv(CLUSTER)
    one.ack(cds2)
    assert names_of(cds2) == {"gamma"} and not removed(cds2), describe(cds2)
    one.expect_nothing()

    # Back to the original content: back to the original versions.
    attache.write_hosts(services)
    last = collect_types(one, (CLUSTER, ENDPOINT))
    assert versions(last[ENDPOINT]) == {"alpha": versions(eds1)["alpha"]}, \
        describe(last[ENDPOINT])
    assert removed(last[CLUSTER]) == {"gamma"} and not last[CLUSTER].resources, \
        describe(last[CLUSTER])


# --- 27 ------------------------------------------------------------------------
def test_c27_ack_is_by_nonce(attache_factory, delta, xds):
    """C27: "ACK/NACK by response_nonce and error_detail, as in SotW" (ACK: a
    request carrying the nonce of the response in flight, without error_detail,
    releases the next update; a request with another nonce does not)."""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    witness = Witness(xds, attache, envoy_node("witness"), CLUSTER)
    stream = delta(attache, envoy_node("acking"))
    cds1 = stream.subscribe(CLUSTER, [], ack=False)
    assert names_of(cds1) == {"alpha", "beta"}
    assert type_state(attache, "acking", CLUSTER)["awaiting_ack"] is True

    services = with_changes(services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    witness.wait_for(lambda clusters: "gamma" in clusters)
    stream.expect_nothing(CLUSTER)
    # An "ACK" with a nonce that is not the one in flight is no ACK.
    stream.send(CLUSTER, response_nonce=cds1.nonce + "-not")
    stream.expect_nothing(CLUSTER)
    state = type_state(attache, "acking", CLUSTER)
    assert state["awaiting_ack"] is True and state["ack_count"] == 0, state

    request = stream.ack(cds1)
    assert request.response_nonce == cds1.nonce and not request.HasField("error_detail")
    cds2 = stream.recv(CLUSTER)
    assert names_of(cds2) == {"gamma"}, describe(cds2)
    stream.ack(cds2)
    stream.expect_nothing()
    wait_until(lambda: type_state(attache, "acking", CLUSTER)["ack_count"] == 2,
               what="two ACKs counted in /debug/clients")


def test_c27_a_request_may_ack_and_change_subscriptions_at_once(attache_factory, delta):
    """C27: "a request may ACK and change subscriptions at once." """
    services = catalog("alpha", "beta", "gamma")
    attache = attache_factory(services)
    stream = delta(attache, envoy_node("acking"))
    first = stream.subscribe(ENDPOINT, ["alpha"], ack=False)
    assert names_of(first) == {"alpha"}
    stream.ack(first, subscribe=["beta"])
    second = stream.recv(ENDPOINT)
    assert names_of(second) == {"beta"}, describe(second)
    # ACK + subscribe + unsubscribe in one request.
    stream.ack(second, subscribe=["gamma"], unsubscribe=["alpha"])
    third = stream.recv(ENDPOINT)
    assert names_of(third) == {"gamma"} and not removed(third), describe(third)
    stream.ack(third)
    stream.expect_nothing()
    wait_until(lambda: type_state(attache, "acking", ENDPOINT)["ack_count"] == 3,
               what="the three ACKs counted")
    # alpha is no longer subscribed: its change is not pushed, beta's is.
    attache.write_hosts(with_changes(services, alpha=moved(services["alpha"], 7001),
                                     beta=moved(services["beta"], 7002)))
    pushed = stream.recv(ENDPOINT)
    assert names_of(pushed) == {"beta"}, describe(pushed)
    assert endpoint_ports(resources_of(pushed)["beta"]) == [7002]


def test_c27_nack_is_recorded_and_not_answered_with_the_same_resources(
        attache_factory, delta):
    """C27: "ACK/NACK by response_nonce and error_detail, as in SotW" (NACK: it is
    recorded, and the rejected resources are not sent again until they change;
    other updates and other types keep flowing)."""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = delta(attache, envoy_node("nacking"))
    cds1 = stream.subscribe(CLUSTER, [], ack=False)
    assert names_of(cds1) == {"alpha", "beta"}
    token = f"conformance-delta-nack-{uuid.uuid4().hex[:12]}"
    nack = stream.nack(cds1, message=f"test rejects this: {token}")
    assert nack.error_detail.message.endswith(token)
    stream.expect_nothing(CLUSTER)

    def recorded():
        state = type_state(attache, "nacking", CLUSTER)
        return state if state["last_nack"] and token in state["last_nack"]["message"] else None

    state = wait_until(recorded, timeout=5, what=f"the NACK {token!r} in /debug/clients")
    assert state["nack_count"] == 1 and state["ack_count"] == 0, state
    assert state["last_nack"]["nonce"] == cds1.nonce, state
    assert state["awaiting_ack"] is False, state

    # Other types flow while CDS is rejected.
    eds = stream.subscribe(ENDPOINT, ["alpha"])
    assert names_of(eds) == {"alpha"}

    # A new cluster is sent alone: the rejected ones did not change.
    services = with_changes(services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    cds2 = stream.recv(CLUSTER)
    assert names_of(cds2) == {"gamma"}, f"rejected clusters sent again: {describe(cds2)}"
    stream.ack(cds2)
    # A changed one is sent again.
    services = with_changes(services, alpha=with_lb(services["alpha"], "LEAST_REQUEST"))
    attache.write_hosts(services)
    cds3, _ = stream.recv_until(lambda r: r.type_url == CLUSTER)
    assert names_of(cds3) == {"alpha"}, describe(cds3)
    assert versions(cds3)["alpha"] != versions(cds1)["alpha"]
    assert resources_of(cds3)["alpha"].lb_policy == resources_of(cds3)["alpha"].LEAST_REQUEST
    assert type_state(attache, "nacking", CLUSTER)["nack_count"] == 1


# --- 28 ------------------------------------------------------------------------
def test_c28_stale_nonce_subscription_change_is_applied(attache_factory, delta):
    """C28: "Subscription changes in a request with a stale nonce are still
    applied." (also: such a request is neither ACK nor NACK)"""
    services = catalog("alpha", "beta", "gamma")
    attache = attache_factory(services)
    stream = delta(attache, envoy_node("stale"))
    first = stream.subscribe(ENDPOINT, ["alpha"])
    services = with_changes(services, alpha=moved(services["alpha"], 7001))
    attache.write_hosts(services)
    second = stream.recv(ENDPOINT)
    stream.ack(second)
    assert second.nonce != first.nonce

    # Nothing in flight; the request carries the older nonce and adds beta.
    stream.send(ENDPOINT, ["beta"], response_nonce=first.nonce)
    third = stream.recv(ENDPOINT)
    assert names_of(third) == {"beta"}, describe(third)
    stream.ack(third)

    # A response in flight; a request with a stale nonce (and an error_detail:
    # a stale NACK is no NACK) adds gamma.
    services = with_changes(services, alpha=moved(services["alpha"], 7002))
    attache.write_hosts(services)
    fourth = stream.recv(ENDPOINT)
    assert names_of(fourth) == {"alpha"}, describe(fourth)
    stream.send(ENDPOINT, ["gamma"], response_nonce=first.nonce,
                error_detail="a stale rejection")
    stream.ack(fourth)
    fifth, _ = stream.recv_until(lambda r: r.type_url == ENDPOINT
                                 and "gamma" in wrapped_resources(r))
    assert endpoint_ports(resources_of(fifth)["gamma"]) == [9020, 9021]
    stream.expect_nothing()
    state = type_state(attache, "stale", ENDPOINT)
    assert state["nack_count"] == 0 and state["last_nack"] is None, state
    assert set(state["subscribed"]) == {"alpha", "beta", "gamma"}, state


# --- 29 ------------------------------------------------------------------------
def test_c29_subscribing_a_held_name_sends_it_again(attache_factory, delta):
    """C29: "resource_names_subscribe: send every listed resource that exists,
    even if the client should already have it." """
    attache = attache_factory(catalog("alpha", "beta"))
    stream = delta(attache, envoy_node())
    first = stream.subscribe(ENDPOINT, ["alpha", "beta"])
    again = stream.subscribe(ENDPOINT, ["alpha"])
    assert versions(again) == {"alpha": versions(first)["alpha"]}, describe(again)
    assert resources_of(again)["alpha"] == resources_of(first)["alpha"]
    both = stream.subscribe(ENDPOINT, ["beta", "alpha", "no-such-service"])
    assert versions(both) == versions(first), describe(both)
    assert removed(both) == {"no-such-service"}

    # Held through the wildcard, then named explicitly.
    clusters = stream.subscribe(CLUSTER, [])
    assert names_of(clusters) == {"alpha", "beta"}
    named = stream.subscribe(CLUSTER, ["alpha"])
    assert versions(named) == {"alpha": versions(clusters)["alpha"]}, describe(named)
    stream.expect_nothing(CLUSTER)


# --- 30 ------------------------------------------------------------------------
def test_c30_unsubscribing_never_subscribed_names_is_ignored(attache_factory, delta, xds):
    """C30: "Unsubscribe: ignore names never subscribed;" (on an explicit and
    on a wildcard subscription)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = delta(attache, envoy_node("unsub"))
    stream.subscribe(CLUSTER, [WILDCARD])
    stream.subscribe(ENDPOINT, ["alpha"])
    stream.send(ENDPOINT, unsubscribe=["beta", "no-such-service"])
    stream.send(CLUSTER, unsubscribe=["no-such-service"])
    stream.expect_nothing()
    assert type_state(attache, "unsub", ENDPOINT)["subscribed"] == ["alpha"]
    # The subscriptions are as they were: alpha's change comes, beta's does not,
    # and nothing is said about beta.
    attache.write_hosts(with_changes(services, alpha=moved(services["alpha"], 7001),
                                     beta=moved(services["beta"], 7002)))
    pushed = stream.recv(ENDPOINT)
    assert names_of(pushed) == {"alpha"} and not removed(pushed), describe(pushed)
    stream.ack(pushed)
    stream.expect_nothing()


def test_c30_unsubscribe_only_request_needs_no_answer(attache_factory, delta):
    """C30: "an unsubscribe-only request needs no answer" (and the name is
    unsubscribed: its changes no longer come; subscribing it again sends it)."""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = delta(attache, envoy_node())
    first = stream.subscribe(ENDPOINT, ["alpha", "beta"])
    stream.send(ENDPOINT, unsubscribe=["beta"])
    stream.expect_nothing()
    attache.write_hosts(with_changes(services, alpha=moved(services["alpha"], 7001),
                                     beta=moved(services["beta"], 7002)))
    pushed = stream.recv(ENDPOINT)
    assert names_of(pushed) == {"alpha"} and not removed(pushed), describe(pushed)
    stream.ack(pushed)
    stream.expect_nothing()
    # Subscribed again: beta comes (the server forgot the client held it).
    again = stream.subscribe(ENDPOINT, ["beta"])
    assert endpoint_ports(resources_of(again)["beta"]) == [7002]
    assert versions(again)["beta"] != versions(first)["beta"]


def test_c30_wildcard_client_dropping_an_explicit_name_gets_it_again_or_removed(
        attache_factory, delta):
    """C30: "except when the client holds `*` and drops an explicit name: then
    send that resource (if in the wildcard set) or list it in removed_resources." """
    attache = attache_factory(catalog("alpha", "beta"))
    stream = delta(attache, envoy_node())
    first = stream.subscribe(CLUSTER, [WILDCARD, "alpha", "ghost"])
    assert names_of(first) == {"alpha", "beta"}, describe(first)
    assert removed(first) == {"ghost"}, describe(first)

    stream.send(CLUSTER, unsubscribe=["alpha"])
    again = stream.recv(CLUSTER)
    assert versions(again) == {"alpha": versions(first)["alpha"]}, describe(again)
    assert not removed(again)
    stream.ack(again)

    stream.send(CLUSTER, unsubscribe=["ghost"])
    gone = stream.recv(CLUSTER)
    assert not gone.resources and removed(gone) == {"ghost"}, describe(gone)
    stream.ack(gone)
    # beta was never named: unsubscribing it is ignored.
    stream.send(CLUSTER, unsubscribe=["beta"])
    stream.expect_nothing()


def test_c30_removal_owed_to_a_wildcard_client_survives_make_before_break(
        attache_factory, delta, xds):
    """C30 with B21 on delta ADS: a wildcard client drops an explicit name that
    does not exist while listeners and routes have work, so the next cluster
    response may only add; the removed_resources entry it is owed must still
    come once listeners and routes are done."""
    services = catalog("alpha")
    attache = attache_factory(services)
    witness = Witness(xds, attache, envoy_node("witness"), CLUSTER)
    stream = delta(attache, grpc_node("owed"))
    wanted = ["alpha", "beta", "gamma"]
    stream.subscribe(LISTENER, wanted)
    stream.subscribe(ROUTE, wanted)
    first = stream.subscribe(CLUSTER, [WILDCARD, "ghost"])
    assert names_of(first) == {"alpha"} and removed(first) == {"ghost"}, describe(first)

    services = with_changes(services, beta=catalog("beta", base_port=8100)["beta"])
    attache.write_hosts(services)
    adds_beta = stream.recv(CLUSTER)  # in flight: listeners and routes wait for its ACK
    assert names_of(adds_beta) == {"beta"}, describe(adds_beta)
    stream.send(CLUSTER, unsubscribe=["ghost"])
    services = with_changes(services, gamma=catalog("gamma", base_port=8200)["gamma"])
    attache.write_hosts(services)
    witness.wait_for(lambda clusters: "gamma" in clusters)
    stream.expect_nothing(CLUSTER)
    stream.ack(adds_beta)
    # gamma's cluster (an addition: it may go while listeners and routes have
    # work), then the Listeners and routes, then the removal owed for ghost.
    removal, seen = stream.recv_until(lambda r: r.type_url == CLUSTER
                                      and "ghost" in removed(r))
    assert any(r.type_url == CLUSTER and "gamma" in names_of(r) for r in seen), \
        [describe(r) for r in seen]


# --- 31 ------------------------------------------------------------------------
def test_c31_legacy_wildcard_only_on_the_first_request(attache_factory, delta):
    """C31: "Wildcard: legacy empty form only while no name was ever subscribed
    for the type;" """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    legacy = delta(attache, envoy_node("legacy"))
    explicit = delta(attache, envoy_node("explicit"))
    assert names_of(legacy.subscribe(CLUSTER, [])) == {"alpha", "beta"}
    assert names_of(explicit.subscribe(CLUSTER, ["alpha"])) == {"alpha"}
    # Later empty requests change nothing for either (the ACKs above were
    # empty too): no answer, and no wildcard for the explicit client.
    legacy.send(CLUSTER)
    explicit.send(CLUSTER)
    legacy.expect_nothing()
    explicit.expect_nothing()
    assert type_state(attache, "explicit", CLUSTER)["wildcard"] is False
    assert type_state(attache, "legacy", CLUSTER)["wildcard"] is True

    services = with_changes(services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    pushed = legacy.recv(CLUSTER)
    legacy.ack(pushed)
    assert names_of(pushed) == {"gamma"}, describe(pushed)
    explicit.expect_nothing()

    # A legacy wildcard client that names a cluster (as Envoy does for an
    # on-demand cluster) gets it, and stays wildcard: Envoy keeps '*' in its
    # subscription once it leaves the legacy form.
    named = legacy.subscribe(CLUSTER, ["alpha"])
    assert names_of(named) == {"alpha"}, describe(named)
    attache.write_hosts(with_changes(services, delta=catalog("delta")["delta"]))
    pushed = legacy.recv(CLUSTER)
    assert names_of(pushed) == {"delta"}, describe(pushed)
    explicit.expect_nothing()


def test_c31_star_subscribes_and_unsubscribes_explicitly(attache_factory, delta, xds):
    """C31: "`*` subscribes and unsubscribes explicitly." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = delta(attache, envoy_node("star"))
    assert names_of(stream.subscribe(CLUSTER, ["alpha"])) == {"alpha"}
    star = stream.subscribe(CLUSTER, [WILDCARD])
    assert "beta" in names_of(star) and names_of(star) <= {"alpha", "beta"}, describe(star)
    assert type_state(attache, "star", CLUSTER)["wildcard"] is True

    services = with_changes(services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    pushed = stream.recv(CLUSTER)
    stream.ack(pushed)
    assert names_of(pushed) == {"gamma"}, describe(pushed)

    stream.send(CLUSTER, unsubscribe=[WILDCARD])
    wait_until(lambda: type_state(attache, "star", CLUSTER)["wildcard"] is False,
               what="the wildcard to be dropped")
    stream.drain(CLUSTER)  # removals of what only '*' gave would be fine
    # One edit: a new cluster, alpha (named) and beta (only from '*') change.
    services = with_changes(services, delta=catalog("delta")["delta"],
                            alpha=with_lb(services["alpha"], "LEAST_REQUEST"),
                            beta=with_lb(services["beta"], "RING_HASH"))
    attache.write_hosts(services)
    pushed = stream.recv(CLUSTER)
    assert names_of(pushed) == {"alpha"}, describe(pushed)
    stream.ack(pushed)
    stream.expect_nothing()

    # '*' as the very first name.
    fresh = delta(attache, envoy_node("fresh-star"))
    assert names_of(fresh.subscribe(CLUSTER, [WILDCARD])) == {"alpha", "beta", "gamma",
                                                               "delta"}
    fresh.send(CLUSTER, unsubscribe=[WILDCARD])
    wait_until(lambda: type_state(attache, "fresh-star", CLUSTER)["wildcard"] is False,
               what="the wildcard to be dropped")
    fresh.drain(CLUSTER)
    witness = Witness(xds, attache, envoy_node("witness"), CLUSTER)
    attache.write_hosts(with_changes(services, epsilon=catalog("epsilon")["epsilon"]))
    witness.wait_for(lambda clusters: "epsilon" in clusters)
    fresh.expect_nothing(allow=lambda r: not r.resources)


# --- 32 ------------------------------------------------------------------------
@pytest.mark.parametrize("type_url", EVERY_TYPE)
def test_c32_missing_name_is_removed_then_pushed_when_it_appears(attache_factory, delta,
                                                                 type_url):
    """C32: "A subscribed name that does not exist goes in removed_resources;
    keep the subscription and push the resource when it appears." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = delta(attache, grpc_node())
    first = stream.subscribe(type_url, ["alpha", "ghost"])
    assert names_of(first) == {"alpha"}, describe(first)
    assert removed(first) == {"ghost"}, describe(first)

    if type_url in (CLUSTER, ENDPOINT):
        # An update of alpha does not repeat the removal of ghost.
        services = with_changes(services, alpha=with_lb(moved(services["alpha"], 7001),
                                                        "LEAST_REQUEST"))
        attache.write_hosts(services)
        update = stream.recv(type_url)
        stream.ack(update)
        assert names_of(update) == {"alpha"} and not removed(update), describe(update)

    with_ghost = with_changes(services, ghost=catalog("ghost", base_port=8500)["ghost"])
    attache.write_hosts(with_ghost)
    appeared = stream.recv(type_url)
    stream.ack(appeared)
    assert names_of(appeared) == {"ghost"} and not removed(appeared), describe(appeared)

    # It goes and comes back: still subscribed.
    attache.write_hosts(services)
    gone = stream.recv(type_url)
    stream.ack(gone)
    assert removed(gone) == {"ghost"} and not gone.resources, describe(gone)
    attache.write_hosts(with_ghost)
    back = stream.recv(type_url)
    assert names_of(back) == {"ghost"}, describe(back)
    assert versions(back) == versions(appeared)


# --- 33 ------------------------------------------------------------------------
def collect_removals(stream, type_urls, name):
    """Receives (and ACKs) until each type_url had a response removing name."""
    found = {}

    def done(response):
        if response.type_url in type_urls and name in removed(response):
            found.setdefault(response.type_url, response)
        return set(found) == set(type_urls)

    _, seen = stream.recv_until(done)
    return found, seen


@pytest.mark.parametrize("flavour", ["envoy", "grpc", "grpc-core"])
def test_c33_deletion_is_a_removed_resources_entry(attache_factory, delta, flavour):
    """C33: "Deletion of any type is a removed_resources entry." (an Envoy:
    clusters and load assignments; gRPC clients, by client feature or by
    user agent: listeners and route configurations too)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    if flavour == "envoy":
        stream = delta(attache, envoy_node())
        types = (CLUSTER, ENDPOINT)
        stream.subscribe(CLUSTER, [])
        stream.subscribe(ENDPOINT, ["alpha", "beta"])
    else:
        stream = delta(attache, grpc_node() if flavour == "grpc" else grpc_core_node())
        types = ALL_TYPES
        for response in subscribe_grpc_style(stream, ["alpha", "beta"]).values():
            assert names_of(response) == {"alpha", "beta"}, describe(response)

    attache.write_hosts(with_changes(services, beta=None))
    found, seen = collect_removals(stream, types, "beta")
    for response in seen:
        assert "alpha" not in removed(response), describe(response)
        assert "beta" not in wrapped_resources(response), describe(response)
    for type_url, response in found.items():
        assert removed(response) == {"beta"}, describe(response)
    stream.expect_nothing()


def test_c33_make_before_break_on_delta_ads(attache_factory, delta):
    """B21 on delta ADS (optional for C33): a new service comes CDS, EDS, then LDS
    and RDS; a deleted service's cluster is removed only after its Listener and
    RouteConfiguration."""
    services = catalog("alpha")
    attache = attache_factory(services)
    stream = delta(attache, grpc_node())
    subscribe_grpc_style(stream, ["alpha", "gamma"])

    attache.write_hosts(with_changes(services, gamma=catalog("gamma")["gamma"]))
    order = []
    while len(order) < 4:
        response, _ = stream.recv_until(
            lambda r: "gamma" in wrapped_resources(r) and r.type_url not in order)
        order.append(response.type_url)
    assert [SHORT[t] for t in order] == ["CDS", "EDS", "LDS", "RDS"], \
        f"gamma arrived in the order {[SHORT[t] for t in order]}"

    attache.write_hosts(services)
    found, seen = collect_removals(stream, ALL_TYPES, "gamma")
    cds = stream.wire_index(found[CLUSTER])
    assert stream.wire_index(found[LISTENER]) < cds and stream.wire_index(found[ROUTE]) < cds, \
        f"gamma's cluster was removed before its Listener or route: {[describe(r) for r in seen]}"


# --- 34 ------------------------------------------------------------------------
def test_c34_reconnect_sends_only_missing_or_changed_and_removes_vanished(
        attache_factory, delta):
    """C34: "Reconnect: initial_resource_versions lists what the client holds;
    send only missing or changed ones, and removed_resources for listed names
    that no longer exist." (the client moves to another attache instance)"""
    services = catalog("alpha", "beta", "omega")
    old = attache_factory(services)
    before = delta(old, envoy_node())
    before.subscribe(CLUSTER, [])
    before.subscribe(ENDPOINT, ["alpha", "beta", "omega"])
    held = {type_url: dict(names) for type_url, names in before.held.items()}
    assert set(held[CLUSTER]) == set(held[ENDPOINT]) == {"alpha", "beta", "omega"}

    changed = with_changes(services, beta=None, gamma=catalog("gamma", base_port=8500)["gamma"],
                           alpha=with_lb(moved(services["alpha"], 7001), "LEAST_REQUEST"))
    new = attache_factory(changed)
    after = delta(new, envoy_node())
    after.send(CLUSTER, [], initial_resource_versions=held[CLUSTER])
    cds = after.recv(CLUSTER)
    after.ack(cds)
    assert names_of(cds) == {"alpha", "gamma"}, describe(cds)
    assert removed(cds) == {"beta"}, describe(cds)
    after.send(ENDPOINT, ["alpha", "beta", "omega"], initial_resource_versions=held[ENDPOINT])
    eds = after.recv(ENDPOINT)
    after.ack(eds)
    assert names_of(eds) == {"alpha"}, describe(eds)
    assert endpoint_ports(resources_of(eds)["alpha"]) == [7001]
    assert removed(eds) == {"beta"}, describe(eds)
    after.expect_nothing()

    # A version the server never gave (another build, a corrupted cache) is a
    # changed resource: sent.
    odd = delta(new, envoy_node("odd"))
    stale = dict(after.held[ENDPOINT], omega="not-a-version-attache-gave")
    odd.send(ENDPOINT, ["alpha", "omega"], initial_resource_versions=stale)
    resent = odd.recv(ENDPOINT)
    assert names_of(resent) == {"omega"} and not removed(resent), describe(resent)


def test_c34_reconnect_with_everything_current_gets_nothing(attache_factory, delta):
    """C34: a client whose initial_resource_versions are all current is sent
    nothing, and still gets later changes."""
    services = catalog("alpha", "beta")
    old = attache_factory(services)
    before = delta(old, envoy_node())
    before.subscribe(CLUSTER, [])
    before.subscribe(ENDPOINT, ["alpha", "beta"])
    new = attache_factory(services)
    after = delta(new, envoy_node())
    after.send(CLUSTER, [], initial_resource_versions=before.held[CLUSTER])
    after.send(ENDPOINT, ["alpha", "beta"], initial_resource_versions=before.held[ENDPOINT])
    after.expect_nothing()
    state = type_state(new, "envoy-test", CLUSTER)
    assert state["wildcard"] is True and state["awaiting_ack"] is False, state

    new.write_hosts(with_changes(services, beta=moved(services["beta"], 7002),
                                 gamma=catalog("gamma")["gamma"]))
    cds = after.recv(CLUSTER)
    after.ack(cds)
    assert names_of(cds) == {"gamma"}, describe(cds)
    eds, _ = after.recv_until(lambda r: r.type_url == ENDPOINT)
    assert names_of(eds) == {"beta"}, describe(eds)
    assert endpoint_ports(resources_of(eds)["beta"]) == [7002]


# --- 35 ------------------------------------------------------------------------
def test_c35_resource_locators_and_dynamic_parameters_are_ignored(attache_factory, delta):
    """C35: "Ignore resource_locators and dynamic parameters without failing." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    node = envoy_node("locators")
    node.dynamic_parameters[CLUSTER].params["shard"] = "7"
    node.dynamic_parameters[ENDPOINT].params["zone"] = "zone-a"
    stream = delta(attache, node)
    locator = ("xdstp://attache.test/envoy.config.cluster.v3.Cluster/beta", {"shard": "7"})
    stream.send(CLUSTER, ["alpha"], locators_subscribe=[locator])
    first = stream.recv(CLUSTER)
    stream.ack(first)
    assert "alpha" in names_of(first), describe(first)
    stream.send(ENDPOINT, ["alpha"], locators_subscribe=[
        ("xdstp://attache.test/envoy.config.endpoint.v3.ClusterLoadAssignment/alpha",
         {"zone": "zone-a"})])
    eds = stream.recv(ENDPOINT)
    stream.ack(eds)
    assert names_of(eds) == {"alpha"}, describe(eds)
    # Locator-only changes: no failure.
    stream.send(CLUSTER, locators_unsubscribe=[locator])
    stream.send(ENDPOINT, locators_subscribe=[("xdstp://attache.test/x/y", {"a": "b"})])
    stream.expect_nothing()
    # The stream keeps working.
    named = stream.subscribe(CLUSTER, ["beta"])
    assert "beta" in names_of(named), describe(named)
    attache.write_hosts(with_changes(services, alpha=moved(services["alpha"], 7001)))
    pushed, _ = stream.recv_until(lambda r: r.type_url == ENDPOINT)
    assert endpoint_ports(resources_of(pushed)["alpha"]) == [7001]


# --- A19 on delta ----------------------------------------------------------------
def small_assignments_host_file(service_count, endpoints_per_service):
    """Host-file text for many services with a few endpoints each (loopback
    data only): many small ClusterLoadAssignments."""
    lines = ["services:"]
    for service in range(service_count):
        lines.append(f"  svc-{service:05d}:")
        lines.append("    endpoints:")
        second, third = 1 + service // 250, service % 250
        for index in range(endpoints_per_service):
            lines.append(f"      - {{address: 127.{second}.{third}.{1 + index}, "
                         f"port: {8000 + index}}}")
    return "\n".join(lines) + "\n"


def test_a19_each_delta_response_stays_under_4_mib(attache_factory, delta):
    """A19 on delta ADS: "Keep each response under 4 MiB by default (gRPC
    clients' limit)". Split large updates counting what a delta response
    really carries: each resource is wrapped in a Resource with its name and
    version, which matters when the resources are many and small."""
    service_count, per_service = 6000, 24
    attache = attache_factory({"placeholder": {"endpoints": []}}, start=False)
    attache.write_hosts_text(small_assignments_host_file(service_count, per_service))
    attache.start()
    all_names = [f"svc-{service:05d}" for service in range(service_count)]
    stream = delta(attache, envoy_node())
    stream.send(ENDPOINT, all_names)
    got, sizes = {}, []
    while len(got) < service_count:
        response = stream.recv(ENDPOINT, timeout=30)
        stream.ack(response)
        sizes.append(response.ByteSize())
        for name, resource in wrapped_resources(response).items():
            got[name] = resource.resource.ByteSize()
    assert set(got) == set(all_names)
    assert sum(got.values()) > 4 * 1024 * 1024, \
        "the load assignments fit in one 4 MiB response: the test proves nothing"
    too_big = [size for size in sizes if size >= 4 * 1024 * 1024]
    assert not too_big, f"responses of {too_big} bytes (limit {4 * 1024 * 1024}); all: {sizes}"
