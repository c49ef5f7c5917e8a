"""/metrics follows real events: an Envoy connecting and taking its config, a
host-file reload, a NACK sent on purpose, the Envoy leaving. The exposition is
parsed with the official Prometheus client's parser, so a format error fails
the test too."""
import pathlib
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from peers.util import endpoints, wait_until

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "conformance"))
from ads_client import CLUSTER, XdsStream, envoy_node  # noqa: E402


def scrape(attache):
    """{(sample name, frozenset of labels): value}; also checks the content type."""
    with urllib.request.urlopen(attache.admin_url + "/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_metrics_move_with_envoy_reload_and_nack(attache_factory, envoy_factory,
                                                 backend_factory):
    first, second = backend_factory("echo-1"), backend_factory("echo-2")
    attache = attache_factory({"echo": {"endpoints": endpoints(first.port)}})
    start = scrape(attache)
    assert value(start, "attache_source_up", source="hosts") == 1
    assert value(start, "attache_catalog_endpoints", source="hosts") == 1
    assert value(start, "attache_catalog_services") == 1
    assert value(start, "attache_xds_connected_clients", protocol="sotw") == 0
    assert value(start, "attache_xds_pushes_total", type="cds") == 0
    assert value(start, "attache_source_last_sync_timestamp_seconds", source="hosts") > 0
    assert value(start, "process_resident_memory_bytes") > 0
    assert value(start, "process_open_fds") > 0

    # A real Envoy connects over ADS and takes clusters and endpoints.
    envoy = envoy_factory(attache)
    wait_until(lambda: "echo" in envoy.endpoint_configs(), what="echo's endpoints in envoy")
    connected = wait_until(
        lambda: (lambda s: value(s, "attache_xds_connected_clients", protocol="sotw") == 1
                 and value(s, "attache_xds_push_duration_seconds_count") >= 2 and s)(
            scrape(attache)),
        what="one connected client and two written pushes")
    assert value(connected, "attache_xds_pushes_total", type="cds") >= 1
    assert value(connected, "attache_xds_pushes_total", type="eds") >= 1
    assert value(connected, "attache_xds_nacks_total", type="cds") == 0

    # A host-file reload: one more update from the source, one more endpoint,
    # and a push of the new assignment.
    updates = value(connected, "attache_source_updates_total", source="hosts")
    eds_pushes = value(connected, "attache_xds_pushes_total", type="eds")
    attache.write_hosts({"echo": {"endpoints": endpoints(first.port) + endpoints(second.port)}})
    reloaded = wait_until(
        lambda: (lambda s: value(s, "attache_source_updates_total", source="hosts") > updates
                 and value(s, "attache_catalog_endpoints", source="hosts") == 2
                 and value(s, "attache_xds_pushes_total", type="eds") > eds_pushes and s)(
            scrape(attache)),
        what="the reload counted and pushed")
    assert value(reloaded, "attache_catalog_generation") > value(connected,
                                                                 "attache_catalog_generation")

    # A NACK, on purpose, from a raw ADS client.
    stream = XdsStream(attache.xds_address, node=envoy_node("metrics-nacker"))
    try:
        stream.send(CLUSTER)
        stream.nack(stream.recv(CLUSTER), message="rejected on purpose by test_metrics")
        nacked = wait_until(
            lambda: (lambda s: value(s, "attache_xds_nacks_total", type="cds") == 1 and s)(
                scrape(attache)),
            what="the NACK counted")
        assert value(nacked, "attache_xds_nacks_total", type="eds") == 0
        assert value(nacked, "attache_xds_connected_clients", protocol="sotw") == 2
    finally:
        stream.close()

    # Clients leaving are counted out.
    envoy.stop()
    wait_until(lambda: value(scrape(attache), "attache_xds_connected_clients",
                             protocol="sotw") == 0, what="no connected client")
