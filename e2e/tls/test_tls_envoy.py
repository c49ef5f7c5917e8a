"""A real Envoy (1.40) takes its clusters and endpoints from attache over
mutual TLS: its xds_cluster has an UpstreamTlsContext that trusts the test CA
and presents a client certificate. Without a client certificate it is refused,
and attache never sees it as a client."""
import time

from peers.grpc_peers import clients_of_node
from peers.util import endpoints, wait_until

from tls_support import tls_config

# How long an Envoy without a client certificate is watched to stay refused.
REFUSED_WINDOW = 3.0


def test_envoy_with_client_certificate_gets_clusters_over_mtls(
        pki, tls_attache, tls_envoy_factory, backend_factory):
    ca = pki.ca("ca")
    server, client = ca.issue_server(), ca.issue_client("envoy")
    backend = backend_factory("echo-1")
    attache = tls_attache(tls_config(server.cert, server.key, ca.cert),
                          services={"echo": {"endpoints": endpoints(backend.port)}})
    assert "xDS: mutual TLS: clients must present a certificate signed by a CA in" \
        in attache.log()

    envoy = tls_envoy_factory(attache, {"ca": ca.cert, "cert": client.cert, "key": client.key})
    wait_until(lambda: envoy.endpoint_addresses("echo") == [f"127.0.0.1:{backend.port}"],
               timeout=15, what="echo's endpoint in envoy's config_dump")
    assert "echo" in envoy.dynamic_clusters()
    assert envoy.stat("control_plane.connected_state") == 1
    # The connection to attache really is TLS.
    assert envoy.stat("cluster.xds_cluster.ssl.handshake") >= 1
    assert envoy.stat("cluster_manager.cds.update_rejected") == 0
    # Traffic flows with what came over mTLS.
    wait_until(lambda: envoy.request() == (200, "echo-1"), timeout=15,
               what="a request through envoy to reach echo-1")
    assert clients_of_node(attache.admin_url, envoy.node_id)
    # Paths may be logged, key material never.
    log = attache.log()
    assert "BEGIN" not in log and "PRIVATE KEY" not in log


def test_envoy_without_client_certificate_is_refused(pki, tls_attache, tls_envoy_factory):
    ca = pki.ca("ca")
    server, client = ca.issue_server(), ca.issue_client("envoy")
    attache = tls_attache(tls_config(server.cert, server.key, ca.cert))

    refused = tls_envoy_factory(attache, {"ca": ca.cert}, wait_ready=False)
    # It does try, again and again...
    wait_until(lambda: refused.stat("cluster.xds_cluster.upstream_cx_total") >= 3,
               timeout=15, what="envoy to try connecting to attache a few times")
    # ...and never gets through: no TLS session, no CDS, no client in attache.
    # (control_plane.connected_state proves nothing here: Envoy sets it to 1
    # when it starts a stream, before the connection exists, and back to 0
    # when that fails, so it flickers.)
    deadline = time.monotonic() + REFUSED_WINDOW
    while time.monotonic() < deadline:
        assert refused.stat("cluster.xds_cluster.ssl.handshake") == 0
        assert refused.stat("cluster_manager.cds.update_success") == 0
        assert not clients_of_node(attache.admin_url, refused.node_id)
        time.sleep(0.1)
    counts = refused.stats(r"^cluster\.xds_cluster\.upstream_cx_(total|connect_fail)$")
    assert counts["cluster.xds_cluster.upstream_cx_connect_fail"] >= 3, counts
    assert not refused.dynamic_clusters()

    # The same Envoy setup with a client certificate gets through, on the same attache.
    accepted = tls_envoy_factory(attache, {"ca": ca.cert, "cert": client.cert, "key": client.key})
    wait_until(lambda: "echo" in accepted.dynamic_clusters(), timeout=15,
               what="the echo cluster in the second envoy")
    assert accepted.stat("control_plane.connected_state") == 1
    assert accepted.stat("cluster.xds_cluster.ssl.handshake") >= 1
    assert clients_of_node(attache.admin_url, accepted.node_id)
    assert not clients_of_node(attache.admin_url, refused.node_id)


def test_envoy_trusting_another_ca_refuses_attache(pki, tls_attache, tls_envoy_factory):
    """The other direction: Envoy checks attache's certificate too."""
    ca, other = pki.ca("ca"), pki.ca("other")
    server, client = ca.issue_server(), ca.issue_client("envoy")
    attache = tls_attache(tls_config(server.cert, server.key, ca.cert))
    envoy = tls_envoy_factory(attache, {"ca": other.cert, "cert": client.cert, "key": client.key},
                              wait_ready=False)
    wait_until(lambda: envoy.stat("cluster.xds_cluster.ssl.fail_verify_error") >= 1,
               timeout=15, what="envoy to refuse attache's certificate")
    assert envoy.stat("cluster_manager.cds.update_success") == 0
    assert not clients_of_node(attache.admin_url, envoy.node_id)


def test_server_tls_only_serves_envoy_without_client_certificate(
        pki, tls_attache, tls_envoy_factory):
    ca = pki.ca("ca")
    server = ca.issue_server()
    attache = tls_attache(tls_config(server.cert, server.key))
    assert "xDS: TLS, clients are not asked for a certificate" in attache.log()
    envoy = tls_envoy_factory(attache, {"ca": ca.cert})
    wait_until(lambda: "echo" in envoy.dynamic_clusters(), timeout=15,
               what="the echo cluster in envoy")
    assert envoy.stat("cluster.xds_cluster.ssl.handshake") >= 1
    assert clients_of_node(attache.admin_url, envoy.node_id)
