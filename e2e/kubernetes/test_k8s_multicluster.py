"""Several real Kubernetes clusters (each its own etcd + kube-apiserver) behind
one attache: how Services and EndpointSlices become clusters and
ClusterLoadAssignments, checked on a raw ADS stream decoded with the official
schemas and in a real Envoy's config dump.

Endpoint addresses are documentation addresses used as data only: the Envoy
here routes its listener to a cluster that does not exist, has no health
checks, and the tests send it no request at all.
"""
import types
import uuid

import pytest

from kube_support import (DRAINING, HEALTHY, cla_localities, dump_rows, debug_sources,
                          endpoint_slice, ep, kube_source, service, wait_until)
from peers.envoy import Envoy

ECHO = "echo.default"


@pytest.fixture(scope="module")
def world(clusters, attaches):
    """Three clusters and one attache with a kubernetes source for each.

    east: locality.region only (zones come from the EndpointSlices);
    west: the same; north: also locality.zone, for endpoints without a zone."""
    east = clusters.make("east")
    west = clusters.make("west")
    north = clusters.make("north")
    attache = attaches([
        kube_source("east", east, region="region-e"),
        kube_source("west", west, region="region-w"),
        kube_source("north", north, locality={"region": "region-n", "zone": "north-default"}),
    ])
    wait_until(lambda: all(s["state"] == "synced" for s in debug_sources(attache).values()),
               timeout=20, what="every source synced")
    return types.SimpleNamespace(east=east, west=west, north=north, attache=attache)


def test_same_service_in_three_clusters_is_one_cluster_with_a_locality_per_cluster_and_zone(
        world, ads, tmp_path):
    east, west, north, attache = world.east, world.west, world.north, world.attache
    east.apply(service("echo"),
               endpoint_slice("echo-east-1", "echo", [
                   ep("192.0.2.11", zone="zone-a", node="node-e1"),
                   ep("192.0.2.12", zone="zone-a"),
                   # not ready, not serving: left out (not_ready: skip is the default)
                   ep("192.0.2.13", zone="zone-a", ready=False, serving=False),
               ]),
               endpoint_slice("echo-east-2", "echo", [ep("192.0.2.21", zone="zone-b")]))
    west.apply(service("echo"),
               endpoint_slice("echo-west-1", "echo", [ep("198.51.100.11", zone="zone-a")]))
    # No zone on the endpoint: north's locality.zone applies.
    north.apply(service("echo"),
                endpoint_slice("echo-north-1", "echo", [ep("203.0.113.11")]))

    expected = [
        ("region-e", "zone-a", "east", "192.0.2.11", 8080, "HEALTHY"),
        ("region-e", "zone-a", "east", "192.0.2.12", 8080, "HEALTHY"),
        ("region-e", "zone-b", "east", "192.0.2.21", 8080, "HEALTHY"),
        ("region-n", "north-default", "north", "203.0.113.11", 8080, "HEALTHY"),
        # west's zone-a is not east's zone-a: sub_zone (the source) tells them apart
        ("region-w", "zone-a", "west", "198.51.100.11", 8080, "HEALTHY"),
    ]
    recorder = ads(attache, [ECHO])
    _, cla = recorder.wait_rows(ECHO, expected)

    # One Envoy cluster for the Service of all three clusters, fed by EDS.
    clusters = recorder.clusters()
    assert [name for name in clusters if name.startswith("echo")] == [ECHO], sorted(clusters)
    assert clusters[ECHO].type == clusters[ECHO].EDS
    assert clusters[ECHO].eds_cluster_config.eds_config.HasField("ads")
    assert not clusters[ECHO].health_checks  # so Envoy below never probes the endpoints
    # One LocalityLbEndpoints per (cluster, zone), each with the right locality.
    assert cla_localities(cla) == [
        ("region-e", "zone-a", "east"), ("region-e", "zone-b", "east"),
        ("region-n", "north-default", "north"), ("region-w", "zone-a", "west")]
    # Node and source name in the endpoint's filter metadata "attache".
    metadata = {lb.endpoint.address.socket_address.address: lb.metadata.filter_metadata["attache"]
                for group in cla.endpoints for lb in group.lb_endpoints}
    assert metadata["192.0.2.11"].fields["node"].string_value == "node-e1"
    assert metadata["192.0.2.11"].fields["cluster"].string_value == "east"
    assert metadata["198.51.100.11"].fields["cluster"].string_value == "west"
    assert "node" not in metadata["198.51.100.11"].fields

    # The same in a real Envoy (config only: no request, no health check).
    envoy = Envoy(tmp_path / "envoy", attache.xds_port, service="no-such-cluster",
                  node_id=f"k8s-e2e-{uuid.uuid4().hex[:8]}")
    try:
        envoy.start()

        def envoy_rows():
            config = envoy.endpoint_configs().get(ECHO)
            return config and dump_rows(config["endpoint_config"])

        def wait_envoy_rows(rows):
            try:
                wait_until(lambda: envoy_rows() == rows, timeout=20,
                           what="Envoy's config dump to show echo.default's endpoints")
            except AssertionError as error:
                raise AssertionError(f"{error}\nexpected {rows}\ngot {envoy_rows()}") from None

        wait_envoy_rows(expected)
        dumped = envoy.endpoint_configs()[ECHO]["endpoint_config"]
        assert sorted((g["locality"].get("region"), g["locality"].get("zone"),
                       g["locality"].get("sub_zone")) for g in dumped["endpoints"]) == \
            cla_localities(cla)
        assert ECHO in envoy.dynamic_clusters()
        # Nothing was sent anywhere: Envoy made no upstream connection.
        assert envoy.stat("cluster.echo.default.upstream_cx_total") == 0

        # Add an endpoint (west), remove one (east, and with it the zone-b
        # locality), mark one terminating but still serving (north).
        west.apply(endpoint_slice("echo-west-1", "echo", [
            ep("198.51.100.11", zone="zone-a"), ep("198.51.100.12", zone="zone-c")]))
        east.kubectl("delete", "endpointslice", "echo-east-2")
        north.apply(endpoint_slice("echo-north-1", "echo", [
            ep("203.0.113.11", ready=False, serving=True, terminating=True),
            ep("203.0.113.12")]))
        changed = [
            ("region-e", "zone-a", "east", "192.0.2.11", 8080, "HEALTHY"),
            ("region-e", "zone-a", "east", "192.0.2.12", 8080, "HEALTHY"),
            ("region-n", "north-default", "north", "203.0.113.11", 8080, "DRAINING"),
            ("region-n", "north-default", "north", "203.0.113.12", 8080, "HEALTHY"),
            ("region-w", "zone-a", "west", "198.51.100.11", 8080, "HEALTHY"),
            ("region-w", "zone-c", "west", "198.51.100.12", 8080, "HEALTHY"),
        ]
        _, cla = recorder.wait_rows(ECHO, changed)
        assert cla_localities(cla) == [
            ("region-e", "zone-a", "east"), ("region-n", "north-default", "north"),
            ("region-w", "zone-a", "west"), ("region-w", "zone-c", "west")]
        health = {lb.endpoint.address.socket_address.address: lb.health_status
                  for group in cla.endpoints for lb in group.lb_endpoints}
        assert health["203.0.113.11"] == DRAINING and health["203.0.113.12"] == HEALTHY
        # Envoy's config dump rebuilds the assignment from its hosts and shows
        # their coarse health: a DRAINING host is "UNHEALTHY" there; the EDS
        # health it got is in /clusters.
        wait_envoy_rows([row[:5] + ("UNHEALTHY" if row[5] == "DRAINING" else row[5],)
                         for row in changed])
        hosts = envoy.cluster_hosts(ECHO)
        assert hosts["203.0.113.11:8080"]["health_status"]["eds_health_status"] == "DRAINING"
        assert hosts["203.0.113.12:8080"]["health_status"]["eds_health_status"] == "HEALTHY"

        # Terminating and no longer serving: gone.
        north.apply(endpoint_slice("echo-north-1", "echo", [
            ep("203.0.113.11", ready=False, serving=False, terminating=True),
            ep("203.0.113.12")]))
        recorder.wait_rows(ECHO, [row for row in changed if row[3] != "203.0.113.11"])
        assert envoy.stat("cluster.echo.default.upstream_cx_total") == 0
    finally:
        envoy.stop()


def test_multi_port_service_and_services_that_stay_out(world, ads):
    east, west, attache = world.east, world.west, world.attache
    # Applied first, in the same informer as "multi" below: once "multi" shows
    # up, attache has provably processed these two and left them out.
    east.apply(
        service("ext", external_name="echo.example.com"),
        service("hidden", annotations={"attache.io/export": "false"}),
        endpoint_slice("hidden-1", "hidden", [ep("192.0.2.51", zone="zone-a")]),
    )
    east.apply(
        service("multi", ports=(("http", 80, 8080), ("grpc", 90, 9090))),
        # The slice's ports (matched by name) are the target ports served.
        endpoint_slice("multi-1", "multi", [ep("192.0.2.41", zone="zone-a"),
                                            ep("192.0.2.42", zone="zone-b")],
                       ports=(("http", 18080), ("grpc", 19090))),
    )
    west.apply(
        service("multi", ports=(("http", 80, 8080), ("grpc", 90, 9090))),
        endpoint_slice("multi-1", "multi", [ep("198.51.100.41", zone="zone-a")],
                       ports=(("grpc", 29090), ("http", 28080))),
    )
    http, grpc = "multi.default:http", "multi.default:grpc"
    recorder = ads(attache, [http, grpc])
    recorder.wait_rows(http, [
        ("region-e", "zone-a", "east", "192.0.2.41", 18080, "HEALTHY"),
        ("region-e", "zone-b", "east", "192.0.2.42", 18080, "HEALTHY"),
        ("region-w", "zone-a", "west", "198.51.100.41", 28080, "HEALTHY")])
    recorder.wait_rows(grpc, [
        ("region-e", "zone-a", "east", "192.0.2.41", 19090, "HEALTHY"),
        ("region-e", "zone-b", "east", "192.0.2.42", 19090, "HEALTHY"),
        ("region-w", "zone-a", "west", "198.51.100.41", 29090, "HEALTHY")])
    clusters = recorder.wait_clusters(lambda c: http in c and grpc in c, what="multi's clusters")
    multi = sorted(name for name in clusters if name.startswith("multi"))
    assert multi == [grpc, http], multi  # no bare "multi.default"
    assert not [name for name in clusters if name.startswith(("ext.", "hidden."))], sorted(clusters)

    # The annotation is what kept "hidden" out: with "true" it is in.
    east.kubectl("annotate", "--overwrite", "service", "hidden", "attache.io/export=true")
    recorder.wait_clusters(lambda c: "hidden.default" in c, what="hidden.default once exported")
    assert "ext.default" not in recorder.clusters()
