"""The registry source end to end: a fake legacy registry (the registration
API of Lyft's `discovery`) on loopback, attache polling it, and raw ADS streams
decoded with the official Envoy schemas (xds-protos).

Synchronisation is by polling (the xDS stream, /debug/sources, the fake
registry's request counters), never by sleeping."""
import pytest

from ads_client import CLUSTER, ENDPOINT, by_name, envoy_node
from peers.util import http_get, http_get_json, wait_until

SOURCE = "legacy"


def host(port, az="us-east-1a", region="us-east-1", weight=1, canary=False,
         instance_id=None):
    """A registration as the discovery service returns it (loopback only)."""
    return {
        "ip_address": "127.0.0.1",
        "port": port,
        "revision": "a1b2c3",
        "service": "ignored",
        "service_repo_name": "ignored",
        "last_check_in": "2024-05-01T10:00:00.000000",
        "tags": {"az": az, "region": region,
                 "instance_id": instance_id or f"i-{port}",
                 "canary": canary, "load_balancing_weight": weight},
    }


def start_attache(attache_factory, registry, services, **settings):
    # The mass-removal guard would hold most of the changes these tests make
    # for 30 s; test_a_mass_removal_is_held_until_confirmed turns it back on.
    source = {"name": SOURCE, "type": "registry", "url": registry.url,
              "services": services, "interval": "100ms", "timeout": "400ms",
              "confirm_empty": 2, "removal_guard": {"window": "0s"}}
    source.update(settings)
    return attache_factory({}, extra_config={"sources": [source]})


def endpoint_rows(cla):
    """(address, port, region, zone, weight, canary, instance_id) per endpoint."""
    rows = []
    for group in cla.endpoints:
        for lb in group.lb_endpoints:
            socket = lb.endpoint.address.socket_address
            metadata = lb.metadata.filter_metadata
            canary = ("envoy.lb" in metadata
                      and metadata["envoy.lb"].fields["canary"].bool_value)
            instance = (metadata["attache"].fields["instance_id"].string_value
                        if "attache" in metadata else "")
            rows.append((socket.address, socket.port_value, group.locality.region,
                         group.locality.zone, lb.load_balancing_weight.value, canary,
                         instance))
    return sorted(rows)


def ports_of(cla):
    return sorted(row[1] for row in endpoint_rows(cla))


def eds_stream(xds, attache, names):
    stream = xds(attache, envoy_node())
    stream.send(ENDPOINT, names)
    return stream


def wait_for_cla(stream, name, predicate, timeout=10):
    """Receives (and ACKs) EDS pushes until `name`'s ClusterLoadAssignment
    satisfies predicate(cla); returns that cla."""
    def matches(response):
        if response.type_url != ENDPOINT:
            return False
        cla = by_name(response).get(name)
        return cla is not None and predicate(cla)
    response, _ = stream.recv_until(matches, timeout=timeout)
    return by_name(response)[name]


def served_now(xds, attache, name):
    """The ClusterLoadAssignment a client connecting now gets."""
    stream = eds_stream(xds, attache, [name])
    try:
        return wait_for_cla(stream, name, lambda cla: True)
    finally:
        stream.close()


def source_status(attache):
    for entry in http_get_json(attache.admin_url + "/debug/sources"):
        if entry["name"] == SOURCE:
            return entry
    raise AssertionError(f"no source {SOURCE!r} in /debug/sources")


def assert_no_eds_push(stream):
    """Nothing new for EDS has come on `stream` so far (checked at once)."""
    stream.expect_nothing(ENDPOINT, timeout=0)


def test_hosts_are_served_with_locality_weight_and_canary(attache_factory, registry, xds):
    registry.set_hosts("alpha", [
        host(9102, az="us-east-1b", weight=7, canary="true", instance_id="i-b"),
        host(9101, az="us-east-1a", weight=3, canary=False, instance_id="i-a"),
    ])
    registry.set_hosts("beta", [host(9201, az="us-west-2a", region="us-west-2",
                                     weight="25")])
    registry.set_hosts("gamma", [])
    attache = start_attache(attache_factory, registry, ["alpha", "beta", "gamma"])

    stream = xds(attache, envoy_node())
    clusters = by_name(stream.subscribe(CLUSTER))
    assert set(clusters) == {"alpha", "beta", "gamma"}
    stream.send(ENDPOINT, ["alpha", "beta", "gamma"])
    response, _ = stream.recv_until(
        lambda r: r.type_url == ENDPOINT and len(by_name(r)) == 3)
    loads = by_name(response)
    assert endpoint_rows(loads["alpha"]) == [
        ("127.0.0.1", 9101, "us-east-1", "us-east-1a", 3, False, "i-a"),
        ("127.0.0.1", 9102, "us-east-1", "us-east-1b", 7, True, "i-b"),
    ]
    assert endpoint_rows(loads["beta"]) == [
        ("127.0.0.1", 9201, "us-west-2", "us-west-2a", 25, False, "i-9201"),
    ]
    # Known to the registry with no hosts: served, with no endpoints.
    assert endpoint_rows(loads["gamma"]) == []
    status = source_status(attache)
    assert status["state"] == "synced" and status["synced_once"], status


def test_a_changed_answer_updates_the_endpoints(attache_factory, registry, xds):
    registry.set_hosts("alpha", [host(9101), host(9102)])
    attache = start_attache(attache_factory, registry, ["alpha"])
    stream = eds_stream(xds, attache, ["alpha"])
    wait_for_cla(stream, "alpha", lambda cla: ports_of(cla) == [9101, 9102])

    registry.set_hosts("alpha", [host(9102, az="us-east-1c", weight=9), host(9103)])
    cla = wait_for_cla(stream, "alpha", lambda cla: ports_of(cla) == [9102, 9103])
    assert endpoint_rows(cla) == [
        ("127.0.0.1", 9102, "us-east-1", "us-east-1c", 9, False, "i-9102"),
        ("127.0.0.1", 9103, "us-east-1", "us-east-1a", 1, False, "i-9103"),
    ]


FAILURES = {
    # failure name: (make it fail, make it recover, what last_error says)
    "http-500": (lambda r: r.status.update(alpha=500),
                 lambda r: r.status.pop("alpha"), "HTTP 500"),
    "timeout": (lambda r: setattr(r, "hang", True), lambda r: r.release(), "timed out"),
    "gone": (lambda r: r.stop(), lambda r: r.start(), "connect"),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failing_registry_keeps_the_last_endpoints(attache_factory, registry, xds,
                                                     failure):
    fail, recover, symptom = FAILURES[failure]
    registry.set_hosts("alpha", [host(9101), host(9102)])
    attache = start_attache(attache_factory, registry, ["alpha"])
    stream = eds_stream(xds, attache, ["alpha"])
    before = endpoint_rows(wait_for_cla(stream, "alpha", lambda cla: len(cla.endpoints)))
    errors_before = source_status(attache)["errors"]

    fail(registry)
    # What the registry would say now is never served while it fails.
    registry.set_hosts("alpha", [host(9109)])
    # Several failed rounds, seen by attache and reported as stale.
    status = wait_until(
        lambda: (lambda s: s if s["state"] == "stale" and s["errors"] >= errors_before + 3
                 else None)(source_status(attache)),
        timeout=15, what="the source to be stale after three failed rounds")
    assert symptom in status["last_error"], status
    assert "service alpha" in status["last_error"], status
    assert registry.url in status["last_error"], status
    assert_no_eds_push(stream)
    assert endpoint_rows(served_now(xds, attache, "alpha")) == before

    recover(registry)
    wait_for_cla(stream, "alpha", lambda cla: ports_of(cla) == [9109])
    wait_until(lambda: source_status(attache)["state"] == "synced",
               what="the source to be synced again")


def test_an_empty_answer_is_applied_only_when_confirmed(attache_factory, registry, xds):
    registry.set_hosts("alpha", [host(9101)])
    attache = start_attache(attache_factory, registry, ["alpha"], confirm_empty=3)
    stream = eds_stream(xds, attache, ["alpha"])
    wait_for_cla(stream, "alpha", lambda cla: ports_of(cla) == [9101])

    # Two empty answers, then the registry fails: attache has seen exactly two
    # empty answers in a row once a request after them was answered 500.
    registry.empty_limit["alpha"] = 2
    registry.set_hosts("alpha", [])
    wait_until(lambda: registry.count("alpha", 500) >= 1, what="two empty answers")
    assert registry.count("alpha", "empty") == 2
    assert_no_eds_push(stream)
    assert ports_of(served_now(xds, attache, "alpha")) == [9101]

    # The third empty answer in a row confirms it.
    registry.empty_limit.pop("alpha")
    cla = wait_for_cla(stream, "alpha", lambda cla: ports_of(cla) == [])
    assert registry.count("alpha", "empty") >= 3
    assert list(cla.endpoints) == [] or all(not g.lb_endpoints for g in cla.endpoints)
    assert "empty answer 1 of the 3" in attache.log()


def test_a_mass_removal_is_held_until_confirmed(attache_factory, registry, xds):
    """A registry restarted with an empty in-memory table refills as hosts
    check in again: an answer with 1 of 2 hosts is held (both stay served)
    while it lasts shorter than the window, and applies once it lasted."""
    registry.set_hosts("alpha", [host(9101), host(9102)])
    attache = start_attache(attache_factory, registry, ["alpha"],
                            removal_guard={"max_percent": 30, "window": "3s"})
    stream = eds_stream(xds, attache, ["alpha"])
    wait_for_cla(stream, "alpha", lambda cla: ports_of(cla) == [9101, 9102])

    # The refill: one host checked in, the other not yet.
    answered = registry.count("alpha", "hosts")
    registry.set_hosts("alpha", [host(9101)])
    wait_until(lambda: registry.count("alpha", "hosts") >= answered + 5,
               what="five answers listing one host")
    assert_no_eds_push(stream)
    assert ports_of(served_now(xds, attache, "alpha")) == [9101, 9102]
    assert "removal_guard" in attache.log()
    # The other host checks in: the hold ends, nothing changed for clients.
    registry.set_hosts("alpha", [host(9101), host(9102)])
    answered = registry.count("alpha", "hosts")
    wait_until(lambda: registry.count("alpha", "hosts") >= answered + 3, what="three full answers")
    assert_no_eds_push(stream)

    # A real removal, confirmed by answers over the window, applies.
    registry.set_hosts("alpha", [host(9102)])
    cla = wait_for_cla(stream, "alpha", lambda cla: ports_of(cla) == [9102], timeout=15)
    assert ports_of(cla) == [9102]


def test_attache_starts_while_the_registry_is_down(attache_factory, registry, xds):
    registry.stop()
    registry.set_hosts("alpha", [host(9101, az="us-east-1b")])
    attache = start_attache(attache_factory, registry, ["alpha"])

    # Started, answering, and honest about the source.
    status = wait_until(lambda: (lambda s: s if s["last_error"] else None)(
        source_status(attache)), what="the registry error to be reported")
    assert status["state"] == "starting" and not status["synced_once"], status
    assert "service alpha" in status["last_error"], status
    assert http_get(attache.admin_url + "/healthz")[0] == 200

    stream = eds_stream(xds, attache, ["alpha"])
    registry.start()
    cla = wait_for_cla(stream, "alpha", lambda cla: ports_of(cla) == [9101])
    assert endpoint_rows(cla)[0][3] == "us-east-1b"
    wait_until(lambda: source_status(attache)["state"] == "synced",
               what="the source to be synced")


def test_max_staleness_withdraws_the_endpoints_of_a_dead_registry(
        attache_factory, registry, xds):
    registry.set_hosts("alpha", [host(9101)])
    attache = start_attache(attache_factory, registry, ["alpha"], max_staleness="1s")
    stream = xds(attache, envoy_node())
    assert set(by_name(stream.subscribe(CLUSTER))) == {"alpha"}

    registry.stop()
    # Withdrawn: the service leaves the catalog, and CDS (a full-state type)
    # says so by leaving its cluster out.
    stream.recv_until(lambda r: r.type_url == CLUSTER and "alpha" not in by_name(r))
    status = source_status(attache)
    assert status["expired"] and status["state"] == "stale", status
