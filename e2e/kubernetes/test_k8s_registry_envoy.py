"""One service from two kinds of origin: a Kubernetes cluster and the legacy
registry. A real Envoy gets one cluster with both, and routes real requests to
the registry's hosts on 127.0.0.1.

The Kubernetes endpoint must have a documentation address (the API server
refuses loopback), which is data only: it is terminating (DRAINING), so Envoy
never sends it a request, and the test checks that Envoy did not.
"""
import uuid

from kube_support import endpoint_slice, ep, service, wait_until
from peers.backends import HttpBackend
from peers.envoy import Envoy
from peers.registry import FakeRegistry


def test_registry_hosts_and_kubernetes_endpoints_merge_and_envoy_routes(
        clusters, attaches, tmp_path):
    cluster = clusters.make("merge")
    # Not ready but serving and terminating: DRAINING, so Envoy sends it nothing.
    cluster.apply(service("shop"), endpoint_slice("shop-1", "shop", [
        ep("203.0.113.40", zone="zone-k", ready=False, serving=True, terminating=True)]))
    backends = [HttpBackend(f"legacy-{i}") for i in range(3)]
    registry = FakeRegistry().start()
    envoy = None
    try:
        registry.set_hosts("shop.default", [
            {"ip_address": "127.0.0.1", "port": b.port, "tags": {"az": "zone-r", "region": "legacy"}}
            for b in backends])
        attache = attaches([
            {"name": "k8s", "type": "kubernetes", "kubeconfig": str(cluster.kubeconfig),
             "locality": {"region": "kube"}},
            {"name": "legacy", "type": "registry", "url": registry.url,
             "services": ["shop.default"], "interval": "200ms"},
        ])
        envoy = Envoy(tmp_path / "envoy", attache.xds_port, "shop.default",
                      node_id=f"envoy-merge-{uuid.uuid4().hex[:8]}").start()

        def hosts():
            found = envoy.cluster_hosts("shop.default") or {}
            return found if len(found) == 4 else None
        found = wait_until(hosts, timeout=30, what="envoy to hold all four shop hosts")
        assert "203.0.113.40:8080" in found
        kube_host = found["203.0.113.40:8080"]
        assert kube_host["health_status"].get("eds_health_status") == "DRAINING", kube_host

        served = set()
        for _ in range(30):
            status, body = envoy.request()
            assert status == 200, (status, body)
            served.add(body)
        assert served == {b.name for b in backends}, served

        def requests_to(address):
            for host in envoy.cluster_hosts("shop.default").values():
                socket = host["address"]["socket_address"]
                if f"{socket['address']}:{socket['port_value']}" == address:
                    return {s["name"]: s.get("value", 0) for s in host.get("stats", [])}
            return {}
        stats = requests_to("203.0.113.40:8080")
        assert stats.get("rq_total", 0) == 0 and stats.get("cx_total", 0) == 0, stats
    finally:
        if envoy:
            envoy.stop()
        registry.stop()
        for backend in backends:
            backend.stop()
