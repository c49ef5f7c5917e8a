"""Checklist section A, items 1-10: the SotW protocol basics.

Each test quotes its item (shared/xds-checklist.md) and drives attache with
exactly the DiscoveryRequests the item is about.
"""
import uuid

import grpc
import pytest
import yaml

from ads_client import (ALL_TYPES, CLUSTER, ENDPOINT, LISTENER, ROUTE, SERVICE_TYPE,
                        NoResponse, by_name, describe, envoy_node, grpc_node, raw_by_name,
                        resources)
from support import (Witness, catalog, endpoint_ports, http_get, moved, wait_until,
                     with_changes)


# --- 1 -------------------------------------------------------------------------
def test_a01_node_from_first_request_is_bound_to_the_stream(attache_factory, xds):
    """A1: "The node arrives on the first request of a stream; later requests may
    omit it. Bind it to the stream."

    The node decides the flavour (gRPC clients get Listeners, Envoys do not), so
    a node-less later request must still be served as the first request's node.
    """
    attache = attache_factory(catalog("alpha", "beta"))

    grpc_stream = xds(attache, grpc_node())
    first = grpc_stream.send(CLUSTER)
    assert first.HasField("node")
    grpc_stream.ack(grpc_stream.recv(CLUSTER))
    later = grpc_stream.send(LISTENER, ["alpha"])
    assert not later.HasField("node")
    listeners = by_name(grpc_stream.recv(LISTENER))
    assert set(listeners) == {"alpha"}, "the node-less LDS request was not served " \
        "as the gRPC node of the stream's first request"
    later = grpc_stream.send(ROUTE, ["alpha"])
    assert not later.HasField("node")
    grpc_stream.ack(grpc_stream.recv(ROUTE))
    # Still bound after node-less requests: a catalog change is pushed as the
    # gRPC client sees it (a Listener for the new service).
    grpc_stream.send(LISTENER, ["alpha", "gamma"])
    assert set(by_name(grpc_stream.recv(LISTENER))) == {"alpha"}
    grpc_stream.ack(grpc_stream.received[-1])
    attache.write_hosts(catalog("alpha", "beta", "gamma"))
    pushed, _ = grpc_stream.recv_until(lambda r: r.type_url == LISTENER)
    assert set(by_name(pushed)) == {"alpha", "gamma"}, describe(pushed)

    # Control: the same node-less request on a stream bound to an Envoy node.
    envoy_stream = xds(attache, envoy_node())
    envoy_stream.subscribe(CLUSTER)
    envoy_stream.send(LISTENER, ["alpha"])
    assert by_name(envoy_stream.recv(LISTENER)) == {}, \
        "an Envoy-flavoured stream got a gRPC Listener"


# --- 2 -------------------------------------------------------------------------
def test_a02_ads_request_without_type_url_fails_the_stream(attache_factory, xds):
    """A2: "On ADS the request's type_url is required; on a per-type service an
    empty one means the service's type." (ADS half)"""
    attache = attache_factory(catalog("alpha"))

    # On a stream that works (control) ...
    stream = xds(attache, envoy_node())
    assert set(by_name(stream.subscribe(CLUSTER))) == {"alpha"}
    stream.send("", [])
    closed = stream.expect_closed()
    assert closed.code == grpc.StatusCode.INVALID_ARGUMENT, closed

    # ... and as the very first request of a stream.
    fresh = xds(attache, envoy_node())
    fresh.send("", ["alpha"])
    closed = fresh.expect_closed()
    assert closed.code == grpc.StatusCode.INVALID_ARGUMENT, closed
    assert fresh.received == [], "a response was sent for a request without type_url"


PER_TYPE_NAMES = {"cds": [], "eds": ["alpha"], "lds": [], "rds": ["alpha", "gamma"]}


@pytest.mark.parametrize("service", ["cds", "eds", "lds", "rds"])
def test_a02_per_type_service_empty_type_url_means_its_type(attache_factory, xds, service):
    """A2: "On ADS the request's type_url is required; on a per-type service an
    empty one means the service's type." (per-type half)"""
    attache = attache_factory(catalog("alpha", "beta"))
    expected_type = SERVICE_TYPE[service]
    stream = xds(attache, grpc_node(), service=service)
    stream.send("", PER_TYPE_NAMES[service])
    response = stream.recv()
    assert response.type_url == expected_type
    assert "alpha" in by_name(response, expected_type)
    # An ACK that also leaves type_url empty is an ACK: no answer, no failure.
    stream.send("", PER_TYPE_NAMES[service], version_info=response.version_info,
                response_nonce=response.nonce)
    stream.expect_nothing()
    # And the stream still follows changes of its type: gamma appears (a new
    # Cluster, Listener, RouteConfiguration) and alpha's endpoints move.
    services = catalog("alpha", "beta", "gamma")
    services["alpha"] = moved(services["alpha"], 7001)
    attache.write_hosts(services)
    pushed = stream.recv()
    assert pushed.type_url == expected_type
    assert pushed.nonce != response.nonce
    assert set(by_name(pushed)) & {"alpha", "gamma"}, describe(pushed)


WRONG_TYPE = {"cds": ENDPOINT, "eds": CLUSTER, "lds": ROUTE, "rds": LISTENER}


@pytest.mark.parametrize("service", ["cds", "eds", "lds", "rds"])
def test_a02_per_type_service_rejects_another_type(attache_factory, xds, service):
    """A2 (as documented for attache): a per-type service answers a request for
    another type by failing the stream with INVALID_ARGUMENT."""
    attache = attache_factory(catalog("alpha"))
    stream = xds(attache, grpc_node(), service=service)
    stream.send(WRONG_TYPE[service], ["alpha"])
    closed = stream.expect_closed()
    assert closed.code == grpc.StatusCode.INVALID_ARGUMENT, closed
    assert all(r.type_url != WRONG_TYPE[service] for r in stream.received)


# --- 3 -------------------------------------------------------------------------
def test_a03_every_response_and_resource_carries_the_type_url(attache_factory, xds):
    """A3: "Every response sets type_url, and every Any inside carries that same
    type_url." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)

    stream = xds(attache, grpc_node())
    initial = {
        CLUSTER: stream.subscribe(CLUSTER, []),
        ENDPOINT: stream.subscribe(ENDPOINT, ["alpha", "beta", "gamma"]),
        LISTENER: stream.subscribe(LISTENER, []),
        ROUTE: stream.subscribe(ROUTE, ["alpha", "beta", "gamma"]),
    }
    for type_url, response in initial.items():
        assert response.type_url == type_url
        assert len(response.resources) == 2, describe(response)
        for any_ in response.resources:
            assert any_.type_url == type_url
        resources(response, type_url)  # decodes with the official class

    # Pushes too: adding gamma changes all four types for this client.
    attache.write_hosts(with_changes(services, gamma=catalog("gamma")["gamma"]))
    pushed = {}
    while len(pushed) < 4:
        response, _ = stream.recv_until(lambda r: r.type_url not in pushed)
        pushed[response.type_url] = response
    for type_url, response in pushed.items():
        assert response.type_url == type_url
        assert response.resources, describe(response)
        for any_ in response.resources:
            assert any_.type_url == type_url, describe(response)
        assert "gamma" in by_name(response, type_url)

    # And on the per-type services.
    for service, type_url in SERVICE_TYPE.items():
        per_type = xds(attache, grpc_node(), service=service)
        response = per_type.subscribe(type_url, PER_TYPE_NAMES[service])
        assert response.type_url == type_url
        assert response.resources
        assert all(any_.type_url == type_url for any_ in response.resources)


# --- 4 -------------------------------------------------------------------------
def test_a04_version_info_is_per_type_and_changes_iff_content_changes(attache_factory, xds):
    """A4: "version_info is non-empty, per type (and per view); it changes iff the
    content of that type changed." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, envoy_node())
    cds1 = stream.subscribe(CLUSTER)
    eds1 = stream.subscribe(ENDPOINT, ["alpha", "beta"])
    assert cds1.version_info and eds1.version_info

    # Endpoints of alpha change: the EDS version changes, CDS is not touched.
    moved_services = with_changes(services, alpha=moved(services["alpha"], 7001))
    attache.write_hosts(moved_services)
    eds2 = stream.recv(ENDPOINT)
    stream.ack(eds2)
    assert endpoint_ports(by_name(eds2)["alpha"]) == [7001]
    assert eds2.version_info and eds2.version_info != eds1.version_info
    stream.expect_nothing(CLUSTER)

    # The cluster changes: the CDS version changes; EDS content did not change, so
    # any EDS response now (attache re-sends the CLA after a CDS change, item 23)
    # keeps the EDS version.
    tuned = with_changes(moved_services)
    tuned["alpha"]["lb_policy"] = "LEAST_REQUEST"
    attache.write_hosts(tuned)
    cds2 = stream.recv(CLUSTER)
    stream.ack(cds2)
    assert cds2.version_info and cds2.version_info != cds1.version_info
    while True:  # drain item-23 re-sends
        try:
            response = stream.recv(ENDPOINT, timeout=1.0)
        except NoResponse:
            break
        stream.ack(response)
        assert response.version_info == eds2.version_info, \
            "EDS version changed although no ClusterLoadAssignment changed"

    # Back to the original content: back to the original versions.
    attache.write_hosts(services)
    cds3, _ = stream.recv_until(lambda r: r.type_url == CLUSTER)
    assert cds3.version_info == cds1.version_info
    eds3, _ = stream.recv_until(
        lambda r: r.type_url == ENDPOINT and "alpha" in by_name(r)
        and endpoint_ports(by_name(r)["alpha"]) == endpoint_ports(by_name(eds1)["alpha"]))
    assert eds3.version_info == eds1.version_info

    # A subscription change is a content change of that type for this stream.
    named = xds(attache, envoy_node())
    only_alpha = named.subscribe(CLUSTER, ["alpha"])
    both = named.subscribe(CLUSTER, ["alpha", "beta"])
    alpha_again = named.subscribe(CLUSTER, ["alpha"])
    assert only_alpha.version_info != both.version_info
    assert alpha_again.version_info == only_alpha.version_info

    # Even an empty answer has a version.
    empty = named.subscribe(ENDPOINT, ["no-such-service"])
    assert len(empty.resources) == 0 and empty.version_info


# --- 5 -------------------------------------------------------------------------
def test_a05_nonces_are_unique_on_the_stream(attache_factory, xds):
    """A5: "Every response carries a nonce unique on the stream; track the latest
    nonce per type." (uniqueness)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    extra = ["g1", "g2", "g3"]
    stream.subscribe(CLUSTER)
    stream.subscribe(ENDPOINT, ["alpha", "beta"] + extra)
    stream.subscribe(LISTENER)
    stream.subscribe(ROUTE, ["alpha", "beta"] + extra)
    for index, name in enumerate(extra):
        services = with_changes(services, **{name: catalog(name, base_port=8000 + 10 * index)[name]})
        attache.write_hosts(services)
        seen_types = set()
        while seen_types != set(ALL_TYPES):
            response, _ = stream.recv_until(lambda r: name in by_name(r))
            seen_types.add(response.type_url)
    nonces = [r.nonce for r in stream.received]
    assert len(nonces) >= 16
    assert all(nonces), "a response without nonce"
    duplicates = sorted({n for n in nonces if nonces.count(n) > 1})
    assert not duplicates, f"nonces used twice on one stream: {duplicates}"


def test_a05_latest_nonce_is_tracked_per_type(attache_factory, xds):
    """A5: "Every response carries a nonce unique on the stream; track the latest
    nonce per type." (per type: an EDS response does not make the CDS nonce stale)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    witness = Witness(xds, attache, envoy_node("witness"), CLUSTER)
    stream = xds(attache, envoy_node())
    cds1 = stream.subscribe(CLUSTER, ack=False)        # CDS in flight
    eds1 = stream.subscribe(ENDPOINT, ["alpha"], ack=False)  # newer nonce, other type
    assert cds1.nonce != eds1.nonce

    attache.write_hosts(with_changes(services, gamma=catalog("gamma")["gamma"]))
    witness.wait_for(lambda clusters: "gamma" in clusters)
    stream.expect_nothing(CLUSTER)  # one CDS response in flight at a time

    stream.ack(cds1)  # cds1.nonce is still the latest CDS nonce
    cds2 = stream.recv(CLUSTER)
    assert "gamma" in by_name(cds2), "the ACK of the CDS response (whose nonce is " \
        "the latest for CDS, though an EDS nonce came later) did not release the update"


# --- 6 -------------------------------------------------------------------------
def test_a06_ack_is_latest_nonce_without_error(attache_factory, xds):
    """A6: "ACK = request whose response_nonce is the latest for its type and has
    no error_detail." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    witness = Witness(xds, attache, envoy_node("witness"), CLUSTER)
    stream = xds(attache, envoy_node())
    cds1 = stream.subscribe(CLUSTER)          # ACKed
    stream.expect_nothing()

    services = with_changes(services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    cds2 = stream.recv(CLUSTER)
    assert set(by_name(cds2)) == {"alpha", "beta", "gamma"}
    assert cds2.nonce != cds1.nonce

    # Not yet ACKed: a further change waits.
    services = with_changes(services, delta=catalog("delta")["delta"])
    attache.write_hosts(services)
    witness.wait_for(lambda clusters: "delta" in clusters)
    stream.expect_nothing(CLUSTER)

    request = stream.ack(cds2)
    assert request.response_nonce == cds2.nonce and not request.HasField("error_detail")
    cds3 = stream.recv(CLUSTER)
    assert set(by_name(cds3)) == {"alpha", "beta", "gamma", "delta"}


# --- 7 -------------------------------------------------------------------------
def test_a07_nack_is_recognised_and_recorded(attache_factory, xds):
    """A7: "NACK = error_detail present. Its version_info is the last accepted one
    (may be empty). Record it (log, metric, debug view)." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, envoy_node("nacking-envoy"))
    cds1 = stream.subscribe(CLUSTER, ack=False)
    token = f"conformance-nack-{uuid.uuid4().hex[:12]}"
    nack = stream.nack(cds1, message=f"test rejects this: {token}", version_info="")
    assert nack.version_info == "" and nack.error_detail.message.endswith(token)
    stream.expect_nothing(CLUSTER)

    # A NACK answers the response like an ACK does: the next change flows.
    services = with_changes(services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    cds2 = stream.recv(CLUSTER)
    assert "gamma" in by_name(cds2)
    stream.ack(cds2)

    # NACK with a non-empty last accepted version.
    services = with_changes(services, delta=catalog("delta")["delta"])
    attache.write_hosts(services)
    cds3 = stream.recv(CLUSTER)
    second_token = f"conformance-nack-{uuid.uuid4().hex[:12]}"
    nack = stream.nack(cds3, message=second_token, version_info=cds2.version_info)
    assert nack.version_info == cds2.version_info
    stream.expect_nothing(CLUSTER)
    services = with_changes(services, epsilon=catalog("epsilon")["epsilon"])
    attache.write_hosts(services)
    cds4 = stream.recv(CLUSTER)
    assert "epsilon" in by_name(cds4)

    def recorded(needle):
        if needle in attache.log():
            return True
        try:
            return needle in http_get(attache.admin_url + "/debug/clients")
        except OSError:
            return False

    for needle in (token, second_token):
        wait_until(lambda: recorded(needle), timeout=5,
                   what=f"the NACK message {needle!r} in attache's log or /debug/clients")


# --- 8 -------------------------------------------------------------------------
def test_a08_nack_is_not_answered_with_the_same_bytes(attache_factory, xds):
    """A8: "Never answer a NACK by resending the same bytes; send again only when
    the content or the subscription changes. Other types keep flowing." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, envoy_node())
    nacked = []

    def nack(response):
        nacked.append((response.version_info, sorted(raw_by_name(response).items())))
        stream.nack(response)

    def assert_not_resent(response):
        assert (response.version_info, sorted(raw_by_name(response).items())) \
            not in nacked, f"NACKed content sent again: {describe(response)}"

    cds1 = stream.subscribe(CLUSTER, ack=False)
    nack(cds1)
    stream.expect_nothing(CLUSTER)

    # Other types keep flowing while CDS is NACKed.
    eds1 = stream.subscribe(ENDPOINT, ["alpha"])
    assert "alpha" in by_name(eds1)
    services = with_changes(services, alpha=moved(services["alpha"], 7001))
    attache.write_hosts(services)
    eds2 = stream.recv(ENDPOINT)
    stream.ack(eds2)
    assert endpoint_ports(by_name(eds2)["alpha"]) == [7001]
    # That edit left every Cluster as it was: the NACKed CDS must not come back.
    stream.expect_nothing(CLUSTER)

    # A subscription change is answered ...
    stream.send(CLUSTER, ["alpha"])
    cds2 = stream.recv(CLUSTER)
    assert set(by_name(cds2)) == {"alpha"}
    assert_not_resent(cds2)
    nack(cds2)
    stream.expect_nothing(CLUSTER)

    # ... and so is a content change.
    services["alpha"]["lb_policy"] = "LEAST_REQUEST"
    attache.write_hosts(services)
    cds3, _ = stream.recv_until(lambda r: r.type_url == CLUSTER, ack=False)
    assert_not_resent(cds3)
    assert by_name(cds3)["alpha"].lb_policy == by_name(cds3)["alpha"].LEAST_REQUEST
    for response in stream.received:
        if response.type_url == CLUSTER and response is not cds3:
            assert response in (cds1, cds2), describe(response)


# --- 9 -------------------------------------------------------------------------
def test_a09_ack_is_not_answered_and_unchanged_content_not_resent(attache_factory, xds):
    """A9: "A plain ACK triggers no response. Unchanged content is never re-sent
    (except the cases in 11e and 23)." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    initial = {}
    for type_url in ALL_TYPES:
        initial[type_url] = stream.subscribe(type_url, ["alpha"])
        assert set(by_name(initial[type_url])) == {"alpha"}
    stream.expect_nothing()

    # The same ACKs again (as a client that repeats itself would send them).
    for type_url in ALL_TYPES:
        stream.ack(initial[type_url])
    stream.expect_nothing()

    # An edit that rewrites alpha identically (new file, different layout) and
    # changes only beta and a new service.
    witness = Witness(xds, attache, grpc_node("witness"), ENDPOINT, ["beta"])
    changed = with_changes(services, beta=moved(services["beta"], 7002),
                           delta=catalog("delta")["delta"])
    changed["beta"]["lb_policy"] = "RING_HASH"
    text = "# rewritten by the conformance suite\n" + yaml.safe_dump(
        {"services": dict(reversed(list(changed.items())))}, sort_keys=False,
        default_flow_style=True)
    attache.write_hosts_text(text)
    witness.wait_for(lambda clas: endpoint_ports(clas["beta"]) == [7002])
    stream.expect_nothing()

    # Control: a change of alpha is pushed.
    changed = with_changes(changed, alpha=moved(services["alpha"], 7001))
    attache.write_hosts(changed)
    response = stream.recv(ENDPOINT)
    assert endpoint_ports(by_name(response)["alpha"]) == [7001]


# --- 10 ------------------------------------------------------------------------
def test_a10_stale_nonce_is_neither_ack_nor_nack(attache_factory, xds):
    """A10: "A request with a stale nonce is neither ACK nor NACK, but its
    resource_names still update the subscription." (neither ACK nor NACK)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    witness = Witness(xds, attache, envoy_node("witness"), CLUSTER)
    stream = xds(attache, envoy_node())
    cds1 = stream.subscribe(CLUSTER)

    services = with_changes(services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    cds2 = stream.recv(CLUSTER)          # in flight, not answered yet
    assert "gamma" in by_name(cds2)
    services = with_changes(services, delta=catalog("delta")["delta"])
    attache.write_hosts(services)
    witness.wait_for(lambda clusters: "delta" in clusters)
    stream.expect_nothing(CLUSTER)

    # Looks like an ACK of cds2, but carries the old nonce.
    stream.send(CLUSTER, [], version_info=cds2.version_info, response_nonce=cds1.nonce)
    stream.expect_nothing(CLUSTER)
    # Looks like a NACK, but carries the old nonce.
    stream.send(CLUSTER, [], version_info=cds1.version_info, response_nonce=cds1.nonce,
                error_detail="stale NACK")
    stream.expect_nothing(CLUSTER)

    stream.ack(cds2)
    cds3 = stream.recv(CLUSTER)
    assert set(by_name(cds3)) == {"alpha", "beta", "gamma", "delta"}


@pytest.mark.parametrize("type_url", [pytest.param(ENDPOINT, id="EDS"),
                                      pytest.param(CLUSTER, id="CDS")])
def test_a10_stale_nonce_still_updates_the_subscription(attache_factory, xds, type_url):
    """A10: "A request with a stale nonce is neither ACK nor NACK, but its
    resource_names still update the subscription." (subscription update)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, envoy_node())
    first = stream.subscribe(type_url, ["alpha"])
    assert set(by_name(first)) == {"alpha"}
    attache.write_hosts(with_changes(services, alpha=dict(
        moved(services["alpha"], 7001), connect_timeout="2s")))
    second, _ = stream.recv_until(lambda r: r.type_url == type_url)
    assert second.nonce != first.nonce
    # Every response is ACKed; now a request with the older nonce adds beta.
    stream.send(type_url, ["alpha", "beta"], version_info=first.version_info,
                response_nonce=first.nonce)
    third, _ = stream.recv_until(lambda r: r.type_url == type_url and "beta" in by_name(r))
    assert "beta" in by_name(third)
