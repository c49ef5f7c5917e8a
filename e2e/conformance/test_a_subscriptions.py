"""Checklist section A, items 11-15: subscriptions and what a response holds."""
import pytest

from ads_client import (NoResponse, ALL_TYPES, CLUSTER, ENDPOINT, LISTENER, ROUTE, SHORT, by_name,
                        describe, envoy_node, grpc_node, names)
from support import (Witness, catalog, collect_types, endpoint_ports, moved,
                     with_changes)

FULL_STATE_TYPES = [pytest.param(CLUSTER, id="CDS"), pytest.param(LISTENER, id="LDS")]
SUBSET_TYPES = [pytest.param(ENDPOINT, id="EDS"), pytest.param(ROUTE, id="RDS")]
EVERY_TYPE = FULL_STATE_TYPES + SUBSET_TYPES


def drain(stream, type_url, window=0.7):
    """Receives and ACKs whatever responses of type_url come within window."""
    got = []
    while True:
        try:
            response = stream.recv(type_url, timeout=window)
        except NoResponse:
            return got
        stream.ack(response)
        got.append(response)


# --- 11a -----------------------------------------------------------------------
def test_a11a_names_are_exact_keys(attache_factory, xds):
    """A11a: "names are exact keys; answer each existing requested resource under
    exactly that name;" """
    services = catalog("alpha", "alpha.v2", "Beta_1")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())

    near_misses = ["ALPHA", "alph", "alpha ", " alpha", "alpha.v", "beta_1", "BETA_1",
                   "xds:///alpha", "alpha:8080", "*alpha"]
    requests = {
        CLUSTER: ["Beta_1", "alpha.v2"] + near_misses,
        ENDPOINT: ["alpha", "alpha.v2", "Beta_1"] + near_misses,
        LISTENER: ["alpha", "Beta_1"] + near_misses,
        ROUTE: ["alpha.v2"] + near_misses,
    }
    for type_url, requested in requests.items():
        response = stream.subscribe(type_url, requested)
        got = names(response, type_url)
        expected = sorted(set(requested) & set(services))
        assert sorted(got) == expected, f"{SHORT[type_url]}: asked {requested}, got {got}"

    # The names inside point at the same exact keys.
    clusters = by_name(stream.received[0])
    assert clusters["alpha.v2"].name == "alpha.v2"
    assert by_name(stream.received[1])["Beta_1"].cluster_name == "Beta_1"


# --- 11b -----------------------------------------------------------------------
@pytest.mark.parametrize("type_url", FULL_STATE_TYPES)
def test_a11b_empty_names_mean_wildcard_only_until_a_name_was_sent(attache_factory, xds,
                                                                   type_url):
    """A11b: "LDS/CDS with an empty resource_names on every request so far =
    wildcard; once any name (including `*`) was sent, empty means "nothing";" """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    witness = Witness(xds, attache, grpc_node("witness"), type_url)

    stream = xds(attache, grpc_node())
    assert set(by_name(stream.subscribe(type_url, []))) == {"alpha", "beta"}
    # A repeated empty request (an ACK) keeps the wildcard: gamma is pushed.
    services = with_changes(services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    assert set(by_name(stream.recv(type_url))) == {"alpha", "beta", "gamma"}
    stream.ack(stream.received[-1])

    assert set(by_name(stream.subscribe(type_url, ["alpha"]))) == {"alpha"}
    emptied = stream.subscribe(type_url, [])
    assert by_name(emptied) == {}, f"empty names after a name: got {describe(emptied)}"
    services = with_changes(services, delta=catalog("delta")["delta"])
    attache.write_hosts(services)
    witness.wait_for(lambda found: "delta" in found)
    stream.expect_nothing(type_url)

    # The same with `*` as the name that was sent.
    star = xds(attache, grpc_node("star"))
    assert set(by_name(star.subscribe(type_url, ["*"]))) == set(services)
    emptied = star.subscribe(type_url, [])
    assert by_name(emptied) == {}, f"empty names after '*': got {describe(emptied)}"
    attache.write_hosts(with_changes(services, epsilon=catalog("epsilon")["epsilon"]))
    witness.wait_for(lambda found: "epsilon" in found)
    star.expect_nothing(type_url)


# --- 11c -----------------------------------------------------------------------
@pytest.mark.parametrize("type_url", FULL_STATE_TYPES)
def test_a11c_star_plus_names_and_dropping_star(attache_factory, xds, type_url):
    """A11c: "`*` plus names means both; dropping `*` drops the wildcard;" """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    witness = Witness(xds, attache, grpc_node("witness"), type_url)
    stream = xds(attache, grpc_node())

    both = stream.subscribe(type_url, ["*", "alpha", "zeta"])
    assert sorted(names(both)) == ["alpha", "beta"], describe(both)

    # The explicit name that did not exist is pushed when it appears, and so is
    # a name that only the wildcard covers.
    services = with_changes(services, zeta=catalog("zeta")["zeta"],
                            gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    pushed = stream.recv(type_url)
    stream.ack(pushed)
    assert sorted(names(pushed)) == ["alpha", "beta", "gamma", "zeta"], describe(pushed)

    # Dropping `*`: only the names remain.
    narrowed = stream.subscribe(type_url, ["alpha", "zeta"])
    assert sorted(names(narrowed)) == ["alpha", "zeta"], describe(narrowed)
    services = with_changes(services, delta=catalog("delta")["delta"])
    attache.write_hosts(services)
    witness.wait_for(lambda found: "delta" in found)
    stream.expect_nothing(type_url)

    # And `*` back.
    widened = stream.subscribe(type_url, ["alpha", "*"])
    assert sorted(names(widened)) == sorted(services), describe(widened)


# --- 11d -----------------------------------------------------------------------
@pytest.mark.parametrize("type_url", SUBSET_TYPES)
def test_a11d_empty_eds_or_rds_list_is_not_a_wildcard(attache_factory, xds, type_url):
    """A11d: "an empty EDS or RDS list is not a wildcard;" """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    witness = Witness(xds, attache, grpc_node("witness"), type_url, ["alpha", "gamma"])
    stream = xds(attache, grpc_node())

    first = stream.subscribe(type_url, [])
    assert by_name(first) == {}, f"an empty {SHORT[type_url]} list got {describe(first)}"

    services = with_changes(services, alpha=moved(services["alpha"], 7001),
                            gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    witness.wait_for(lambda found: "gamma" in found)
    stream.expect_nothing(type_url)


# --- 11e -----------------------------------------------------------------------
@pytest.mark.parametrize("type_url", EVERY_TYPE)
def test_a11e_growing_subscription_gets_the_added_resources(attache_factory, xds, type_url):
    """A11e: "when the subscribed set grows, send the added resources even if
    unchanged;" """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())

    assert set(by_name(stream.subscribe(type_url, ["alpha"]))) == {"alpha"}
    grown = stream.subscribe(type_url, ["alpha", "beta"])
    assert "beta" in by_name(grown), describe(grown)

    # Drop beta, then ask for it again: the client no longer holds it, so it
    # must be sent again although it never changed.
    stream.send(type_url, ["alpha"])
    drain(stream, type_url)
    regrown = stream.subscribe(type_url, ["alpha", "beta"])
    assert "beta" in by_name(regrown), describe(regrown)
    if type_url in (CLUSTER, LISTENER):
        assert set(by_name(regrown)) == {"alpha", "beta"}


# --- 11f -----------------------------------------------------------------------
@pytest.mark.parametrize("type_url", EVERY_TYPE)
def test_a11f_subscription_to_missing_name_is_remembered(attache_factory, xds, type_url):
    """A11f: "remember subscriptions to names that do not exist yet; push when
    they appear." """
    services = catalog("alpha")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    first = stream.subscribe(type_url, ["gamma"])
    assert by_name(first) == {}, describe(first)

    # An unrelated edit in between does not make attache forget.
    witness = Witness(xds, attache, grpc_node("witness"), type_url, ["beta"])
    services = with_changes(services, beta=catalog("beta")["beta"],
                            alpha=moved(services["alpha"], 7001))
    attache.write_hosts(services)
    witness.wait_for(lambda found: "beta" in found)

    attache.write_hosts(with_changes(services, gamma=catalog("gamma")["gamma"]))
    pushed, _ = stream.recv_until(lambda r: r.type_url == type_url and by_name(r))
    assert set(by_name(pushed)) == {"gamma"}, describe(pushed)


# --- 12 ------------------------------------------------------------------------
def test_a12_lds_and_cds_responses_are_full_state(attache_factory, xds):
    """A12: "LDS and CDS responses are full state: every subscribed resource every
    time; one left out is deleted." """
    services = catalog("alpha", "beta", "gamma")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    assert set(by_name(stream.subscribe(CLUSTER))) == {"alpha", "beta", "gamma"}
    assert set(by_name(stream.subscribe(LISTENER))) == {"alpha", "beta", "gamma"}
    named = xds(attache, grpc_node("named"))
    assert set(by_name(named.subscribe(CLUSTER, ["alpha", "beta"]))) == {"alpha", "beta"}

    # One cluster changes: every subscribed Cluster is in the response.
    services["beta"]["connect_timeout"] = "3s"
    attache.write_hosts(services)
    for client, expected in ((stream, {"alpha", "beta", "gamma"}), (named, {"alpha", "beta"})):
        response, _ = client.recv_until(lambda r: r.type_url == CLUSTER)
        clusters = by_name(response)
        assert set(clusters) == expected, describe(response)
        assert clusters["beta"].connect_timeout.seconds == 3

    # A service goes: left out of both full-state types.
    services = with_changes(services, gamma=None)
    attache.write_hosts(services)
    for response in collect_types(stream, (CLUSTER, LISTENER)).values():
        assert set(by_name(response)) == {"alpha", "beta"}, describe(response)
    named.expect_nothing(CLUSTER)  # nothing it subscribes to changed

    # A service comes: the old ones are still listed.
    services = with_changes(services, delta=catalog("delta")["delta"])
    attache.write_hosts(services)
    for response in collect_types(stream, (CLUSTER, LISTENER)).values():
        assert set(by_name(response)) == {"alpha", "beta", "delta"}, describe(response)


# --- 13 ------------------------------------------------------------------------
def test_a13_emptying_a_cluster_sends_an_empty_load_assignment(attache_factory, xds):
    """A13: "EDS and RDS responses may carry any subset; leaving one out deletes
    nothing. To empty a cluster, send its ClusterLoadAssignment with no
    endpoints." """
    services = catalog("alpha", "beta")
    services["idle"] = {"endpoints": []}
    attache = attache_factory(services)
    stream = xds(attache, envoy_node())
    first = by_name(stream.subscribe(ENDPOINT, ["alpha", "beta", "idle"]))
    assert set(first) == {"alpha", "beta", "idle"}
    assert endpoint_ports(first["alpha"]) == [9000, 9001]
    assert endpoint_ports(first["idle"]) == [], "a service without endpoints"

    services["alpha"]["endpoints"] = []
    attache.write_hosts(services)
    response, _ = stream.recv_until(lambda r: r.type_url == ENDPOINT)
    assert "alpha" in by_name(response), \
        "alpha lost its endpoints but its ClusterLoadAssignment was not sent: " \
        "leaving it out deletes nothing"
    assert endpoint_ports(by_name(response)["alpha"]) == [], describe(response)


# --- 14 ------------------------------------------------------------------------
def test_a14_no_duplicate_names_in_a_response(attache_factory, xds):
    """A14: "No duplicate resource names in one response." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    requests = {
        CLUSTER: ["alpha", "alpha", "*", "beta", "*"],
        ENDPOINT: ["alpha", "alpha", "beta", "beta", "alpha"],
        LISTENER: ["beta", "*", "beta", "alpha"],
        ROUTE: ["beta", "beta", "alpha", "alpha"],
    }
    for type_url, requested in requests.items():
        response = stream.subscribe(type_url, requested)
        got = names(response, type_url)
        assert sorted(got) == ["alpha", "beta"], f"{SHORT[type_url]}: {got}"

    # Pushes too.
    services = with_changes(services, alpha=moved(services["alpha"], 7001))
    services["alpha"]["lb_policy"] = "RING_HASH"
    attache.write_hosts(services)
    seen = set()
    while not {CLUSTER, ENDPOINT} <= seen:
        response = stream.recv()
        stream.ack(response)
        got = names(response)
        assert len(got) == len(set(got)), describe(response)
        seen.add(response.type_url)


# --- 15 ------------------------------------------------------------------------
def test_a15_no_resources_that_were_not_requested(attache_factory, xds):
    """A15: "Never send resources that were not requested (except LDS/CDS
    wildcard)." """
    services = catalog("alpha", "beta", "gamma")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    for type_url in ALL_TYPES:
        response = stream.subscribe(type_url, ["alpha", "nosuch"])
        assert names(response) == ["alpha"], describe(response)

    witness = Witness(xds, attache, grpc_node("witness"), ENDPOINT, ["beta"])
    services = with_changes(services, beta=moved(services["beta"], 7002),
                            delta=catalog("delta")["delta"], gamma=None)
    services["beta"]["lb_policy"] = "LEAST_REQUEST"
    attache.write_hosts(services)
    witness.wait_for(lambda clas: endpoint_ports(clas["beta"]) == [7002])
    stream.expect_nothing()

    services = with_changes(services, alpha=moved(services["alpha"], 7001))
    attache.write_hosts(services)
    response = stream.recv(ENDPOINT)
    assert names(response) == ["alpha"], describe(response)
    # An Envoy subscribed to only some endpoints gets only those, too.
    envoy = xds(attache, envoy_node())
    envoy.subscribe(CLUSTER)
    assert names(envoy.subscribe(ENDPOINT, ["beta"])) == ["beta"]
