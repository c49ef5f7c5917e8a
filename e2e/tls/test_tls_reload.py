"""Certificates are picked up when their files change, without a restart:
a Secret-style folder swapped by the kubelet (cert-manager), plain atomic
renames, a new client CA, and rotations that go wrong (the last good
certificate keeps serving)."""
import os
import shutil
import time

import grpc
import pytest

from prometheus_client.parser import text_string_to_metric_families

from peers.util import endpoints, http_get, wait_until
from tls_support import (AdsStream, SecretFolder, cluster_names, credentials, fetch_clusters,
                         not_after, tls_config)

# attache reads the files every second here (xds.tls.refresh), gRPC takes
# what it published within another second; generous for slow machines.
RELOAD_TIMEOUT = 15


def connects(attache, creds):
    try:
        return fetch_clusters(attache.xds_address, f"probe-{time.monotonic_ns()}", creds) != []
    except grpc.RpcError:
        return False


def assert_refused(attache, creds):
    with pytest.raises(grpc.RpcError) as failure:
        fetch_clusters(attache.xds_address, f"refused-{time.monotonic_ns()}", creds)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE


def tls_metrics(attache):
    """{sample name: value} of the xds.tls samples of /metrics."""
    status, text = http_get(attache.admin_url + "/metrics")
    assert status == 200, text
    return {s.name: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name.startswith("attache_xds_tls_")}


def replace(source, target):
    """Copies source over target atomically (written aside, renamed in)."""
    aside = target.with_name("." + target.name + ".tmp")
    if isinstance(source, bytes):
        aside.write_bytes(source)
    else:
        shutil.copyfile(source, aside)
    os.replace(aside, target)


def test_rotation_through_a_secret_folder_needs_no_restart(pki, tls_attache):
    ca1, ca2 = pki.ca("ca1"), pki.ca("ca2")
    first, second = ca1.issue_server(), ca2.issue_server()
    # Relative paths: a folder next to the config, as a Secret mounted there.
    attache = tls_attache(tls_config("tls/tls.crt", "tls/tls.key", refresh="1s"), start=False)
    secret = SecretFolder(attache.workdir / "tls")
    secret.write({"tls.crt": first.cert, "tls.key": first.key})
    attache.start()
    pid = attache.proc.pid
    assert connects(attache, credentials(ca1.cert))
    assert_refused(attache, credentials(ca2.cert))
    # A stream opened on the first certificate, kept open across the rotation.
    stream = AdsStream(attache.xds_address, "before-rotation", credentials(ca1.cert))
    try:
        stream.send()
        response = stream.recv()
        assert cluster_names(response) == ["echo"]
        stream.ack(response)

        secret.write({"tls.crt": second.cert, "tls.key": second.key})
        wait_until(lambda: connects(attache, credentials(ca2.cert)), timeout=RELOAD_TIMEOUT,
                   interval=0.2, what="a client trusting only CA 2 to connect")
        assert_refused(attache, credentials(ca1.cert))
        assert attache.proc.pid == pid and attache.proc.poll() is None
        assert (f"xDS TLS: loaded the new certificate in {attache.workdir / 'tls' / 'tls.crt'}"
                in attache.log())

        # The connection made before the rotation is still served.
        attache.write_hosts({"echo": {"endpoints": endpoints(8081)},
                             "billing": {"endpoints": endpoints(8082)}})
        assert cluster_names(stream.recv()) == ["billing", "echo"]
    finally:
        stream.close()


def test_new_client_ca_is_picked_up(pki, tls_attache, tmp_path):
    ca1, ca2 = pki.ca("ca1"), pki.ca("ca2")
    server = ca1.issue_server()
    client1, client2 = ca1.issue_client("old"), ca2.issue_client("new")
    client_ca = tmp_path / "client-ca.crt"
    replace(ca1.cert, client_ca)
    attache = tls_attache(tls_config(server.cert, server.key, client_ca, refresh="1s"))
    assert connects(attache, credentials(ca1.cert, client1))
    assert_refused(attache, credentials(ca1.cert, client2))

    replace(ca2.cert, client_ca)
    wait_until(lambda: connects(attache, credentials(ca1.cert, client2)),
               timeout=RELOAD_TIMEOUT, interval=0.2,
               what="a client with a certificate of CA 2 to connect")
    assert_refused(attache, credentials(ca1.cert, client1))
    assert f"xDS TLS: loaded the new client CA in {client_ca}" in attache.log()

    # A bundle: both CAs at once.
    replace(ca1.cert.read_bytes() + ca2.cert.read_bytes(), client_ca)
    wait_until(lambda: connects(attache, credentials(ca1.cert, client1)),
               timeout=RELOAD_TIMEOUT, interval=0.2,
               what="a client of CA 1 to connect again")
    assert connects(attache, credentials(ca1.cert, client2))


def test_a_broken_rotation_keeps_the_last_good_certificate(pki, tls_attache, tmp_path):
    ca1, ca2 = pki.ca("ca1"), pki.ca("ca2")
    # Of different lifetimes, so that /metrics tells which one is served.
    first, second = ca1.issue_server(), ca2.issue_server(days=60)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    replace(first.cert, cert)
    replace(first.key, key)
    attache = tls_attache(tls_config(cert, key, refresh="1s"))
    assert connects(attache, credentials(ca1.cert))
    assert tls_metrics(attache) == {
        "attache_xds_tls_certificate_expiry_timestamp_seconds": not_after(first.cert),
        "attache_xds_tls_refused_reloads_total": 0,
        "attache_xds_tls_refused_clients_total": 0}

    # Half a rotation: the new key next to the old certificate.
    replace(second.key, key)
    mismatch = f"xDS TLS: xds.tls.key: {key} does not match the certificate in {cert}"
    wait_until(lambda: mismatch in attache.log(), timeout=RELOAD_TIMEOUT,
               what="attache to report the key that does not match")
    # Then a certificate file that is not one.
    replace(b"-----BEGIN CERTIFICATE-----\ncut short", cert)
    broken = f"xDS TLS: xds.tls.cert: {cert}: certificate 1 is not a valid PEM certificate"
    wait_until(lambda: broken in attache.log(), timeout=RELOAD_TIMEOUT,
               what="attache to report the broken certificate")
    # Meanwhile new clients still get the first certificate, a few refreshes long.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert connects(attache, credentials(ca1.cert))
        time.sleep(0.2)
    assert_refused(attache, credentials(ca2.cert))
    # Each problem is reported once, not at every refresh.
    log = attache.log()
    assert log.count(mismatch) == 1 and log.count(broken) == 1, log
    # Counted as they were logged; the expiry is still the served one's.
    assert tls_metrics(attache) == {
        "attache_xds_tls_certificate_expiry_timestamp_seconds": not_after(first.cert),
        "attache_xds_tls_refused_reloads_total": 2,
        "attache_xds_tls_refused_clients_total": 0}

    # The rotation completes: the new pair is served.
    replace(second.cert, cert)
    wait_until(lambda: connects(attache, credentials(ca2.cert)), timeout=RELOAD_TIMEOUT,
               interval=0.2, what="a client trusting only CA 2 to connect")
    assert_refused(attache, credentials(ca1.cert))
    assert "BEGIN" not in attache.log()
    assert (tls_metrics(attache)["attache_xds_tls_certificate_expiry_timestamp_seconds"]
            == not_after(second.cert))
