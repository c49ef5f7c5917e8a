"""Checklist section A, items 16-20: reconnects, stream lifetime, latency, sizes,
determinism."""
import time

import pytest
import yaml

from ads_client import (ALL_TYPES, CLUSTER, ENDPOINT, LISTENER, SHORT, by_name,
                        describe, envoy_node, grpc_node, names, raw_by_name)
from support import catalog, endpoint_ports, endpoints, with_changes

SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
MIB = 1024 * 1024


def rich_catalog():
    """Services with localities, weights and health states, in several orders."""
    return {
        "alpha": {"connect_timeout": "250ms", "lb_policy": "LEAST_REQUEST",
                  "endpoints": (
                      endpoints(9001, 9002, region="eu-west-1", zone="eu-west-1a",
                                sub_zone="rack1", weight=3)
                      + endpoints(9003, region="eu-west-1", zone="eu-west-1b",
                                  health="draining")
                      + endpoints(9004, region="us-east-1", zone="us-east-1a",
                                  health="unhealthy", weight=7)
                      + endpoints(9005))},
        "beta": {"endpoints": endpoints(9010, 9011, zone="z2")},
        "gamma.v2": {"lb_policy": "RING_HASH", "endpoints": []},
    }


def subscribe_all(stream, service_names):
    """CDS and LDS wildcard, EDS and RDS for service_names; returns {type: response}."""
    responses = {}
    for type_url in ALL_TYPES:
        wanted = [] if type_url in (CLUSTER, LISTENER) else list(service_names)
        responses[type_url] = stream.subscribe(type_url, wanted)
    return responses


# --- 16 ------------------------------------------------------------------------
def test_a16_first_request_with_foreign_version_and_nonce_is_initial(attache_factory, xds):
    """A16: "On a new stream, a first request carrying a version or nonce from
    another server instance is an initial request: answer with the current
    state." """
    services = catalog("alpha", "beta")
    first_instance = attache_factory(services)
    second_instance = attache_factory(services)

    old = subscribe_all(xds(first_instance, grpc_node()), services)
    for type_url in ALL_TYPES:
        assert set(by_name(old[type_url])) == {"alpha", "beta"}

    # Reconnect elsewhere: every first request carries what the client holds.
    moved_stream = xds(second_instance, grpc_node())
    for type_url in ALL_TYPES:
        wanted = [] if type_url in (CLUSTER, LISTENER) else ["alpha", "beta"]
        moved_stream.send(type_url, wanted, version_info=old[type_url].version_info,
                          response_nonce=old[type_url].nonce)
        response = moved_stream.recv(type_url)
        moved_stream.ack(response)
        assert set(by_name(response)) == {"alpha", "beta"}, \
            f"{SHORT[type_url]} after reconnect: {describe(response)}"

    # Reconnect to a restarted instance with a version and nonce it never made.
    first_instance.restart()
    restarted = xds(first_instance, envoy_node())
    restarted.send(CLUSTER, [], version_info="v-from-another-life",
                   response_nonce="nonce-from-another-life")
    assert set(by_name(restarted.recv(CLUSTER))) == {"alpha", "beta"}
    restarted.send(ENDPOINT, ["beta"], version_info=old[ENDPOINT].version_info,
                   response_nonce="nonce-from-another-life")
    assert set(by_name(restarted.recv(ENDPOINT))) == {"beta"}


# --- 17 ------------------------------------------------------------------------
def test_a17_stream_is_not_closed_before_a_response(attache_factory, xds):
    """A17: "Close a stream only after at least one response (gRPC treats an early
    close as a connectivity failure)." """
    attache = attache_factory(catalog("alpha"))

    # A stream on which the client has not said anything yet stays open.
    silent = xds(attache, envoy_node())
    silent.expect_nothing(timeout=1.5)
    assert set(by_name(silent.subscribe(CLUSTER))) == {"alpha"}
    silent.expect_nothing()  # and stays open after the first response

    # A first request for a type attache does not serve (Envoy can ask SDS over
    # ADS) must not end the stream before any response: an empty answer or
    # silence is fine, and the stream must go on serving the other types.
    stream = xds(attache, envoy_node("sds-envoy"))
    stream.send(SECRET, ["some-secret"])
    stream.expect_nothing(timeout=1.0, allow=lambda r: r.type_url == SECRET and
                          len(r.resources) == 0)
    stream.send(CLUSTER, [])
    assert set(by_name(stream.recv(CLUSTER))) == {"alpha"}


# --- 18 ------------------------------------------------------------------------
@pytest.mark.parametrize("flavour", ["envoy", "grpc"])
def test_a18_new_subscription_answered_within_a_second(attache_factory, xds, flavour):
    """A18: "Answer a new subscription within a second under normal load (clients
    time out at 15 s)." """
    services = catalog("alpha", "beta", "gamma")
    attache = attache_factory(services)
    node = grpc_node() if flavour == "grpc" else envoy_node()
    types = ALL_TYPES if flavour == "grpc" else (CLUSTER, ENDPOINT)

    def timed(stream, type_url, wanted):
        started = time.monotonic()
        stream.send(type_url, wanted)
        arrived, response = stream.recv_timed(type_url)
        stream.ack(response)
        return arrived - started, response

    # A fresh stream: the connection setup is included in the time.
    stream = xds(attache, node)
    elapsed, response = timed(stream, types[0], [])
    assert response.resources, describe(response)
    assert elapsed < 1.0, f"first answer after {elapsed:.3f}s"
    # Every further type on the stream.
    for type_url in types[1:]:
        elapsed, response = timed(stream, type_url, ["alpha"])
        assert names(response) == ["alpha"], describe(response)
        assert elapsed < 1.0, f"{SHORT[type_url]} answered after {elapsed:.3f}s"
    # A subscription that grows.
    for type_url in types[1:]:
        elapsed, response = timed(stream, type_url, ["alpha", "beta", "gamma"])
        assert {"beta", "gamma"} <= set(by_name(response)), describe(response)
        assert elapsed < 1.0, f"{SHORT[type_url]} growth answered after {elapsed:.3f}s"
    # A Listener or Cluster name that does not exist is a new subscription too:
    # the (full-state) answer without it is how the client learns that it does
    # not exist, instead of waiting for its 15 s does-not-exist timer.
    full_state = xds(attache, node)
    for type_url in (CLUSTER, LISTENER) if flavour == "grpc" else (CLUSTER,):
        full_state.subscribe(type_url, ["alpha"])
        elapsed, response = timed(full_state, type_url, ["alpha", "no-such-service"])
        assert set(by_name(response)) == {"alpha"}, describe(response)
        assert elapsed < 1.0, f"{SHORT[type_url]} answered after {elapsed:.3f}s"


# --- 19 ------------------------------------------------------------------------
def test_a19_large_eds_request_is_accepted(attache_factory, xds):
    """A19: "Keep each response under 4 MiB by default (gRPC clients' limit),
    accept large requests (long EDS name lists)." (large requests)"""
    services = catalog("alpha", "beta")
    attache = attache_factory(services)
    suffix = ".a-rather-long-service-name-for-the-conformance-suite.namespace.svc.cluster.local"
    wanted = [f"svc-{index:06d}{suffix}" for index in range(100_000)]
    wanted.insert(50_000, "alpha")

    stream = xds(attache, envoy_node())
    stream.subscribe(CLUSTER)
    request = stream.send(ENDPOINT, wanted)
    assert request.ByteSize() > 4 * MIB, "the request is not large enough to prove much"
    response = stream.recv(ENDPOINT, timeout=30)
    stream.ack(response)
    assert set(by_name(response)) == {"alpha"}, describe(response)

    # The whole list was taken in: a name from its tail is pushed when it appears.
    late = wanted[-1]
    attache.write_hosts(with_changes(services, **{late: catalog("x")["x"]}))
    pushed, _ = stream.recv_until(lambda r: r.type_url == ENDPOINT and late in by_name(r),
                                  timeout=15)
    assert endpoint_ports(by_name(pushed)[late]) == [9000, 9001]


def big_host_file(service_count=2000, endpoints_per_service=120):
    """Host-file text for many services with many endpoints (loopback data only)."""
    lines = ["services:"]
    for service in range(service_count):
        lines.append(f"  svc-{service:04d}:")
        lines.append("    endpoints:")
        second, third = 1 + service // 250, service % 250
        for index in range(endpoints_per_service):
            lines.append(f"      - {{address: 127.{second}.{third}.{1 + index}, "
                         f"port: {8000 + index}}}")
    return "\n".join(lines) + "\n"


def test_a19_each_response_stays_under_4_mib(attache_factory, xds):
    """A19: "Keep each response under 4 MiB by default (gRPC clients' limit),
    accept large requests (long EDS name lists)." (response size)"""
    service_count = 2000
    attache = attache_factory({"placeholder": {"endpoints": []}}, start=False)
    attache.write_hosts_text(big_host_file(service_count))
    attache.start()
    all_names = [f"svc-{service:04d}" for service in range(service_count)]

    stream = xds(attache, grpc_node())
    stream.send(CLUSTER, [])
    cds, _ = stream.recv_until(lambda r: r.type_url == CLUSTER
                               and len(r.resources) == service_count, timeout=60)
    assert cds.ByteSize() < 4 * MIB

    stream.send(ENDPOINT, all_names)
    got = {}
    sizes = []
    deadline = time.monotonic() + 60
    while len(got) < service_count and time.monotonic() < deadline:
        response = stream.recv(ENDPOINT, timeout=30)
        stream.ack(response)
        sizes.append(response.ByteSize())
        for name, raw in raw_by_name(response).items():
            got[name] = len(raw)
    assert set(got) == set(all_names), f"{len(got)} of {service_count} received"
    assert sum(got.values()) > 4 * MIB, \
        "the load assignments fit in one 4 MiB response: the test proves nothing"
    too_big = [size for size in sizes if size >= 4 * MIB]
    assert not too_big, f"responses of {too_big} bytes (limit {4 * MIB}); all: {sizes}"


# --- 20 ------------------------------------------------------------------------
def snapshot(stream, service_names):
    """{type: (version_info, {name: bytes})} for every type."""
    return {type_url: (response.version_info, raw_by_name(response))
            for type_url, response in subscribe_all(stream, service_names).items()}


@pytest.mark.parametrize("flavour", ["envoy", "grpc"])
def test_a20_same_catalog_gives_same_bytes_and_versions(attache_factory, xds, flavour):
    """A20: "Deterministic serialization: equal resources give identical bytes and
    identical versions." """
    services = rich_catalog()
    node = grpc_node if flavour == "grpc" else envoy_node
    first = attache_factory(services)
    second = attache_factory(services)

    one = snapshot(xds(first, node()), services)
    two = snapshot(xds(second, node("another-node")), services)
    assert one[CLUSTER][1] and one[ENDPOINT][1]
    for type_url in ALL_TYPES:
        assert one[type_url][0], f"{SHORT[type_url]}: empty version_info"
        assert one[type_url][1] == two[type_url][1], \
            f"{SHORT[type_url]}: two processes serialize the same catalog differently"
        assert one[type_url][0] == two[type_url][0], \
            f"{SHORT[type_url]}: versions {one[type_url][0]!r} != {two[type_url][0]!r}"

    # The same after a restart, on a new stream.
    first.restart()
    three = snapshot(xds(first, node()), services)
    assert three == one, "a restart changed bytes or versions"

    # Control: a different catalog gives different bytes and versions.
    changed = rich_catalog()
    changed["alpha"]["endpoints"][0]["weight"] = 4
    changed["alpha"]["connect_timeout"] = "300ms"
    third = attache_factory(changed)
    other = snapshot(xds(third, node()), services)
    for type_url in (CLUSTER, ENDPOINT):
        assert other[type_url][0] != one[type_url][0]
        assert other[type_url][1]["alpha"] != one[type_url][1]["alpha"]
        assert other[type_url][1]["beta"] == one[type_url][1]["beta"]


def test_a20_order_of_services_in_the_file_does_not_matter(attache_factory, xds):
    """A20: "Deterministic serialization: equal resources give identical bytes and
    identical versions." (a YAML mapping has no order: the same services written
    in another order are the same catalog)"""
    services = rich_catalog()
    sorted_first = attache_factory(services)
    reversed_first = attache_factory(services, start=False)
    reversed_first.write_hosts_text(yaml.safe_dump(
        {"services": dict(reversed(list(services.items())))}, sort_keys=False))
    reversed_first.start()
    assert reversed_first.hosts_path.read_text().index("gamma.v2") < \
        reversed_first.hosts_path.read_text().index("alpha")

    one = snapshot(xds(sorted_first, grpc_node()), services)
    two = snapshot(xds(reversed_first, grpc_node()), services)
    for type_url in ALL_TYPES:
        assert one[type_url] == two[type_url], \
            f"{SHORT[type_url]} differs with the services listed in another order"
