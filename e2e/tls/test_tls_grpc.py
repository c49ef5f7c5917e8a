"""Real gRPC clients (grpcio) over TLS and mutual TLS: raw ADS streams on
grpc.secure_channel, and a proxyless gRPC xDS client whose bootstrap gives
TLS channel credentials for attache."""
import json
import uuid

import grpc
import pytest

from peers.grpc_peers import XdsClient, clients_of_node
from peers.util import http_get, wait_until
from tls_support import credentials, fetch_clusters, tls_config


def node():
    return f"grpc-tls-{uuid.uuid4().hex[:10]}"


def refused(attache, creds):
    """Asserts that a stream with creds fails as a refused connection does,
    and that attache never saw its node; returns the error's details."""
    node_id = node()
    with pytest.raises(grpc.RpcError) as failure:
        fetch_clusters(attache.xds_address, node_id, creds)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE, failure.value
    assert not clients_of_node(attache.admin_url, node_id)
    return failure.value.details()


def test_mtls_needs_a_client_certificate_from_the_ca(pki, tls_attache):
    ca, other = pki.ca("ca"), pki.ca("other")
    server = ca.issue_server()
    attache = tls_attache(tls_config(server.cert, server.key, ca.cert))

    assert fetch_clusters(attache.xds_address, node(),
                          credentials(ca.cert, ca.issue_client("grpc"))) == ["echo"]
    # No client certificate.
    refused(attache, credentials(ca.cert))
    # A client certificate from a CA attache does not trust.
    refused(attache, credentials(ca.cert, other.issue_client("stranger")))
    # Plaintext.
    refused(attache, None)
    # The client does not trust attache's certificate.
    details = refused(attache, credentials(other.cert, ca.issue_client("grpc2")))
    assert "CERTIFICATE_VERIFY_FAILED" in details or "handshake" in details.lower(), details


def refused_clients(attache):
    status, text = http_get(attache.admin_url + "/metrics")
    assert status == 200, text
    samples = [line for line in text.splitlines()
               if line.startswith("attache_xds_tls_refused_clients_total ")]
    assert len(samples) == 1, text
    return float(samples[0].split()[1])


def test_client_names_admit_only_the_listed_identities(pki, tls_attache):
    """A CA shared with other workloads: only certificates that carry a
    listed name (URI or DNS SAN, exact or by prefix, or the CN) get in."""
    ca = pki.ca("ca")
    server = ca.issue_server()
    attache = tls_attache(tls_config(
        server.cert, server.key, ca.cert,
        client_names=["spiffe://mesh.test/ns/edge/*", "envoy.mesh.test", "legacy-proxy"]))
    admitted = {
        "spiffe prefix": ca.issue_client("a", ["URI:spiffe://mesh.test/ns/edge/sa/envoy"]),
        "dns": ca.issue_client("b", ["DNS:envoy.mesh.test"]),
        "common name": ca.issue_client("legacy-proxy"),
    }
    for what, client in admitted.items():
        assert fetch_clusters(attache.xds_address, node(),
                              credentials(ca.cert, client)) == ["echo"], what
    assert refused_clients(attache) == 0
    strangers = [
        ca.issue_client("c", ["URI:spiffe://mesh.test/ns/batch/sa/worker"]),
        ca.issue_client("d", ["DNS:envoy.mesh.test.evil"]),
        ca.issue_client("other-proxy"),
    ]
    for client in strangers:
        refused(attache, credentials(ca.cert, client))
    assert refused_clients(attache) == 3
    log = attache.log()
    assert ("xDS TLS: refused a client certificate: none of its names "
            '("spiffe://mesh.test/ns/batch/sa/worker", "c") is in xds.tls.client_names') in log, log
    # Refusals leave the admitted ones served.
    assert fetch_clusters(attache.xds_address, node(),
                          credentials(ca.cert, admitted["dns"])) == ["echo"]


def test_server_tls_only(pki, tls_attache):
    ca, other = pki.ca("ca"), pki.ca("other")
    server = ca.issue_server()
    attache = tls_attache(tls_config(server.cert, server.key))

    assert fetch_clusters(attache.xds_address, node(), credentials(ca.cert)) == ["echo"]
    # A client certificate is not asked for, and does no harm.
    assert fetch_clusters(attache.xds_address, node(),
                          credentials(ca.cert, other.issue_client("any"))) == ["echo"]
    refused(attache, None)
    refused(attache, credentials(other.cert))


def test_proxyless_grpc_client_over_mtls(pki, tls_attache, grpc_server_factory, tmp_path):
    """grpcio's xDS client reaches attache with the "tls" channel credentials
    of its bootstrap (gRFC A65) and then calls a backend it learnt about."""
    ca = pki.ca("ca")
    server, client = ca.issue_server(), ca.issue_client("proxyless")
    backend = grpc_server_factory("grpc-echo-1")
    attache = tls_attache(tls_config(server.cert, server.key, ca.cert), services={
        "echo": {"endpoints": [{"address": "127.0.0.1", "port": backend.port}]}})
    node_id = node()
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text(json.dumps({
        "xds_servers": [{
            "server_uri": f"127.0.0.1:{attache.xds_port}",
            "channel_creds": [{"type": "tls", "config": {
                "ca_certificate_file": str(ca.cert),
                "certificate_file": str(client.cert),
                "private_key_file": str(client.key),
            }}],
            "server_features": ["xds_v3"],
        }],
        "node": {"id": node_id, "cluster": "tls-e2e", "locality": {"zone": "zone-a"}},
    }))
    caller = XdsClient("python", bootstrap, "xds:///echo", tmp_path, count=0)
    try:
        caller.wait_for_replies(lambda lines: "grpc-echo-1" in lines, timeout=30,
                                what="a call through the xDS client to reach grpc-echo-1")
        assert clients_of_node(attache.admin_url, node_id)
    finally:
        caller.stop()
    assert backend.calls >= 1


def test_a_refused_handshake_leaves_attache_serving(pki, tls_attache):
    """Many refused handshakes in a row: attache keeps serving good clients."""
    ca = pki.ca("ca")
    server, client = ca.issue_server(), ca.issue_client("grpc")
    attache = tls_attache(tls_config(server.cert, server.key, ca.cert))
    for _ in range(20):
        with pytest.raises(grpc.RpcError):
            fetch_clusters(attache.xds_address, node(), credentials(ca.cert))
    assert attache.proc.poll() is None
    wait_until(lambda: fetch_clusters(attache.xds_address, node(),
                                      credentials(ca.cert, client)) == ["echo"],
               timeout=10, what="a good client to get clusters")
