"""Checklist section B, items 21-24: ADS ordering and warming."""
import time

import pytest

from ads_client import (NoResponse, CLUSTER, ENDPOINT, LISTENER, ROUTE, SHORT, by_name,
                        describe, envoy_node, grpc_node)
from support import catalog, endpoint_ports, moved, with_changes

GRPC_ORDER = (LISTENER, ROUTE, CLUSTER, ENDPOINT)  # the order a gRPC client subscribes


def subscribe_grpc_style(stream, wanted):
    """LDS, RDS, CDS, EDS for the same names, each answered and ACKed."""
    return {type_url: stream.subscribe(type_url, wanted) for type_url in GRPC_ORDER}


def mentions(response, name):
    return name in by_name(response)


# --- 21 ------------------------------------------------------------------------
def test_b21_new_cluster_comes_by_cds_before_any_eds(attache_factory, xds):
    """B21: "Make before break: CDS, then EDS for new clusters, then LDS, then RDS;
    remove stale clusters last." (Envoy, wildcard CDS: a new service)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, envoy_node())
    stream.subscribe(CLUSTER)
    eds = stream.subscribe(ENDPOINT, ["alpha", "beta"])
    original_alpha = endpoint_ports(by_name(eds)["alpha"])

    # One edit: a new service, and alpha's cluster and endpoints both change.
    changed = with_changes(services, gamma=catalog("gamma")["gamma"],
                           alpha=moved(services["alpha"], 7001))
    changed["alpha"]["lb_policy"] = "LEAST_REQUEST"
    attache.write_hosts(changed)
    first = stream.recv()
    assert first.type_url == CLUSTER, f"first response after the edit: {describe(first)}"
    clusters = by_name(first)
    assert {"alpha", "beta", "gamma"} == set(clusters)
    assert clusters["alpha"].lb_policy == clusters["alpha"].LEAST_REQUEST
    stream.ack(first)

    # EDS for alpha follows; nothing for gamma, which the client has not asked for.
    later = []
    while True:
        try:
            response = stream.recv(timeout=1.0)
        except NoResponse:
            break
        stream.ack(response)
        later.append(response)
        assert not mentions(response, "gamma"), describe(response)
    alpha_updates = [r for r in later if r.type_url == ENDPOINT and mentions(r, "alpha")]
    assert alpha_updates, "alpha's new endpoints never came"
    assert endpoint_ports(by_name(alpha_updates[-1])["alpha"]) == [7001] != original_alpha

    # The client asks for the new cluster's endpoints: they come.
    stream.send(ENDPOINT, ["alpha", "beta", "gamma"])
    response, _ = stream.recv_until(lambda r: r.type_url == ENDPOINT and mentions(r, "gamma"))
    assert endpoint_ports(by_name(response)["gamma"]) == [9000, 9001]


def test_b21_new_service_comes_cds_eds_lds_rds(attache_factory, xds):
    """B21: "Make before break: CDS, then EDS for new clusters, then LDS, then RDS;
    remove stale clusters last." (gRPC client already subscribed to the new
    service's names in all four types)"""
    services = catalog("alpha")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    for type_url, response in subscribe_grpc_style(stream, ["alpha", "gamma"]).items():
        assert set(by_name(response)) == {"alpha"}, describe(response)

    attache.write_hosts(with_changes(services, gamma=catalog("gamma")["gamma"]))
    order = []
    deadline = time.monotonic() + 10
    while len(order) < 4 and time.monotonic() < deadline:
        response = stream.recv()
        stream.ack(response)
        if mentions(response, "gamma") and response.type_url not in order:
            order.append(response.type_url)
    assert [SHORT[t] for t in order] == ["CDS", "EDS", "LDS", "RDS"], \
        f"gamma arrived in the order {[SHORT[t] for t in order]}"


def test_b21_removed_cluster_goes_after_lds_and_rds(attache_factory, xds):
    """B21: "Make before break: CDS, then EDS for new clusters, then LDS, then RDS;
    remove stale clusters last." (a service goes: LDS/RDS updates before the CDS
    response that removes its cluster)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    for type_url, response in subscribe_grpc_style(stream, ["alpha", "beta"]).items():
        assert set(by_name(response)) == {"alpha", "beta"}, describe(response)

    attache.write_hosts(with_changes(services, beta=None))
    removal, seen = stream.recv_until(
        lambda r: r.type_url == CLUSTER and not mentions(r, "beta"))
    assert set(by_name(removal)) == {"alpha"}
    before = [r for r in seen if stream.wire_index(r) < stream.wire_index(removal)]
    assert any(r.type_url == LISTENER and set(by_name(r)) == {"alpha"} for r in before), \
        "the CDS response that removes beta came before the LDS update that drops " \
        f"its Listener; order: {[describe(r) for r in seen]}"
    # Anything that follows must not be an LDS/RDS update about beta.
    while True:
        try:
            response = stream.recv(timeout=1.0)
        except NoResponse:
            break
        stream.ack(response)
        assert response.type_url not in (LISTENER, ROUTE), \
            f"{describe(response)} came after the cluster was removed"


def test_b21_cluster_removed_with_an_addition_still_goes_last(attache_factory, xds):
    """B21: "Make before break: CDS, then EDS for new clusters, then LDS, then RDS;
    remove stale clusters last." (one edit removes beta and adds gamma: the new
    cluster comes first, beta's cluster goes only after the LDS update that
    drops beta's Listener)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    for type_url, response in subscribe_grpc_style(
            stream, ["alpha", "beta", "gamma"]).items():
        assert set(by_name(response)) == {"alpha", "beta"}, describe(response)

    attache.write_hosts(with_changes(services, beta=None, gamma=catalog("gamma")["gamma"]))
    removal, seen = stream.recv_until(
        lambda r: r.type_url == CLUSTER and not mentions(r, "beta"))
    listener_update = [r for r in seen if r.type_url == LISTENER and not mentions(r, "beta")]
    assert listener_update and \
        stream.wire_index(listener_update[0]) < stream.wire_index(removal), \
        "beta's cluster was removed before the LDS update that drops its Listener; " \
        f"order: {[describe(r) for r in seen]}"
    additions = [r for r in seen if r.type_url == CLUSTER and mentions(r, "gamma")]
    assert stream.wire_index(additions[0]) < stream.wire_index(listener_update[0]), \
        "gamma's cluster did not come before the Listener changes"


# --- 22 ------------------------------------------------------------------------
def test_b22_route_to_new_cluster_waits_for_cds_ack(attache_factory, xds):
    """B22: "Do not point a route at a new cluster before the client has ACKed the
    CDS that adds it." """
    services = catalog("alpha")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    subscribe_grpc_style(stream, ["alpha", "gamma"])

    attache.write_hosts(with_changes(services, gamma=catalog("gamma")["gamma"]))
    # Everything up to the CDS response that adds gamma (others are ACKed) ...
    while True:
        response = stream.recv()
        if response.type_url == CLUSTER and mentions(response, "gamma"):
            cds = response
            break
        assert not (response.type_url == ROUTE and mentions(response, "gamma")), \
            f"a route to gamma came before the CDS that adds gamma: {describe(response)}"
        stream.ack(response)
    # ... and, while that CDS is not ACKed, no route to gamma.
    stream.expect_nothing(
        timeout=1.0, allow=lambda r: not (r.type_url == ROUTE and mentions(r, "gamma")))

    stream.ack(cds)
    route, _ = stream.recv_until(lambda r: r.type_url == ROUTE and mentions(r, "gamma"))
    config = by_name(route)["gamma"]
    clusters = [r.route.cluster for vh in config.virtual_hosts for r in vh.routes]
    assert clusters == ["gamma"], f"gamma's route points at {clusters}"


# --- 23 ------------------------------------------------------------------------
@pytest.mark.parametrize("change", ["lb_policy", "connect_timeout"])
def test_b23_cluster_change_is_followed_by_its_load_assignment(attache_factory, xds, change):
    """B23: "After a CDS change to an EDS cluster, Envoy re-requests its
    ClusterLoadAssignment and stays "warming" until it gets one: answer that
    request even when the endpoints did not change." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, envoy_node())
    stream.subscribe(CLUSTER)
    eds = stream.subscribe(ENDPOINT, ["alpha", "beta"])
    stream.expect_nothing()

    changed = with_changes(services)
    changed["alpha"][change] = "LEAST_REQUEST" if change == "lb_policy" else "5s"
    attache.write_hosts(changed)
    cds = stream.recv(CLUSTER)
    assert set(by_name(cds)) == {"alpha", "beta"}
    # What Envoy does: ACK the CDS, and (the new cluster's EDS watch replacing the
    # old one) send the same EDS names with the latest EDS nonce again.
    stream.ack(cds)
    stream.send(ENDPOINT, ["alpha", "beta"])
    response, seen = stream.recv_until(
        lambda r: r.type_url == ENDPOINT and mentions(r, "alpha"))
    assert endpoint_ports(by_name(response)["alpha"]) == \
        endpoint_ports(by_name(eds)["alpha"])
    assert stream.wire_index(response) > stream.wire_index(cds), \
        "alpha's ClusterLoadAssignment came before the CDS change, not after it"


# --- 24 ------------------------------------------------------------------------
@pytest.mark.parametrize("flavour", ["envoy", "grpc"])
def test_b24_eds_is_not_held_back_for_unknown_clusters(attache_factory, xds, flavour):
    """B24: "Never hold back EDS because a requested cluster is unknown; answer
    with what exists." """
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node() if flavour == "grpc" else envoy_node())

    # First request on the stream, before any CDS, with names that do not exist.
    started = time.monotonic()
    stream.send(ENDPOINT, ["nosuch-1", "alpha", "nosuch-2"])
    arrived, response = stream.recv_timed(ENDPOINT)
    stream.ack(response)
    assert set(by_name(response)) == {"alpha"}, describe(response)
    assert arrived - started < 1.0, f"held back for {arrived - started:.3f}s"

    # With CDS known (attache may re-send alpha's load assignment after the CDS
    # response, item 23; every response is ACKed), a grown list that still holds
    # unknown names.
    stream.subscribe(CLUSTER)
    started = time.monotonic()
    stream.send(ENDPOINT, ["nosuch-1", "alpha", "nosuch-2", "beta", "nosuch-3"])
    response, seen = stream.recv_until(
        lambda r: r.type_url == ENDPOINT and "beta" in by_name(r))
    elapsed = time.monotonic() - started
    for each in seen:
        assert set(by_name(each)) <= {"alpha", "beta"}, describe(each)
    assert elapsed < 1.0, f"held back for {elapsed:.3f}s"


def test_b22_route_to_new_cluster_not_sent_after_its_cds_was_nacked(attache_factory, xds):
    """B22: "Do not point a route at a new cluster before the client has ACKed the
    CDS that adds it." (the client NACKs that CDS: it never ACKed it, so the
    route to gamma must wait for a CDS with gamma that it does ACK)"""
    services = catalog("alpha")
    attache = attache_factory(services)
    stream = xds(attache, grpc_node())
    subscribe_grpc_style(stream, ["alpha", "gamma"])

    services = with_changes(services, gamma=catalog("gamma")["gamma"])
    attache.write_hosts(services)
    while True:
        response = stream.recv()
        if response.type_url == CLUSTER and mentions(response, "gamma"):
            cds = response
            break
        stream.ack(response)
    stream.nack(cds, message="the conformance test rejects gamma")
    stream.expect_nothing(
        timeout=1.0, allow=lambda r: not (r.type_url == ROUTE and mentions(r, "gamma")))

    # A new version of gamma's cluster that the client ACKs releases the route.
    services["gamma"]["connect_timeout"] = "2s"
    attache.write_hosts(services)
    fixed, _ = stream.recv_until(lambda r: r.type_url == CLUSTER and mentions(r, "gamma"),
                                 ack=False)
    assert not any(r.type_url == ROUTE and mentions(r, "gamma") for r in stream.received)
    stream.ack(fixed)
    route, _ = stream.recv_until(lambda r: r.type_url == ROUTE and mentions(r, "gamma"))
