"""attache authenticating to a real API server with a client certificate
(kube-apiserver --client-ca-file; CN=attache-test, O=system:masters):
certificate and key from files, and inline as client-certificate-data /
client-key-data, with no token; a certificate from a CA the API server does
not trust is refused (401). Private keys never show in attache's log or in
/debug/sources.

Endpoint addresses are documentation addresses, data only.
"""
import base64
import json
import pathlib

from kube_cluster import generate_ca, issue_client_cert
from kube_support import debug_sources, endpoint_slice, ep, http_get, service, wait_until

# Each good source watches its own namespace, so what is served shows which
# source delivered it (attache keeps one endpoint per address:port of a
# service across sources: the same slice seen by both would show only once).
FILES_NS, DATA_NS = "by-files", "by-data"
FILES_ADDRESS, DATA_ADDRESS = "203.0.113.9", "203.0.113.10"


def b64(path):
    return base64.b64encode(pathlib.Path(path).read_bytes()).decode()


def kubeconfig(cluster, path, user, inline_ca=False):
    """The cluster's kubeconfig with `user` as its only credentials (no token)."""
    config = json.loads(pathlib.Path(cluster.kubeconfig).read_text())
    if inline_ca:
        entry = config["clusters"][0]["cluster"]
        entry["certificate-authority-data"] = b64(entry.pop("certificate-authority"))
    config["users"][0]["user"] = user
    assert "token" not in json.dumps(config["users"])
    pathlib.Path(path).write_text(json.dumps(config))
    return str(path)


def source(name, region, kubeconfig_path, **fields):
    return dict({"name": name, "type": "kubernetes", "kubeconfig": kubeconfig_path,
                 "locality": {"region": region}}, **fields)


def key_fragments(key_file):
    """What of a private key must never be shown: the PEM, each of its base64
    lines, and the base64 of the whole PEM (as in client-key-data)."""
    pem = pathlib.Path(key_file).read_text()
    lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    assert len(lines) > 10, "expected an RSA key in PEM"
    inline = b64(key_file)
    return [pem.strip()] + lines + [inline[i:i + 64] for i in range(0, len(inline) - 63, 64)]


def test_client_certificate_from_files_and_inline_data_untrusted_ca_refused(
        clusters, attaches, ads, tmp_path):
    cluster = clusters.make("certs")
    # The API server itself takes the certificate (no token sent).
    status, review = cluster.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                     {"apiVersion": "authentication.k8s.io/v1",
                                      "kind": "SelfSubjectReview"}, client_cert=True)
    assert status == 201, (status, review)
    assert review["status"]["userInfo"]["username"] == "attache-test"
    assert "system:masters" in review["status"]["userInfo"]["groups"]

    objects = []
    for namespace, address in ((FILES_NS, FILES_ADDRESS), (DATA_NS, DATA_ADDRESS)):
        objects += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                    service("certz", namespace=namespace),
                    endpoint_slice("certz-1", "certz", [ep(address, zone="zone-a")], namespace=namespace)]
    cluster.apply(*objects)

    # The same subject, signed by a CA the API server does not trust.
    rogue = tmp_path / "rogue"
    rogue.mkdir()
    generate_ca(rogue / "ca.crt", rogue / "ca.key", common_name="not-the-client-ca")
    issue_client_cert(rogue / "client.crt", rogue / "client.key", rogue / "ca.crt", rogue / "ca.key",
                      common_name="attache-test", organizations=("system:masters",))

    attache = attaches([
        source("cert-files", "region-f", kubeconfig(cluster, tmp_path / "files.kubeconfig", {
            "client-certificate": str(cluster.client_cert_file),
            "client-key": str(cluster.client_key_file)}), namespaces=[FILES_NS]),
        source("cert-data", "region-d", kubeconfig(cluster, tmp_path / "data.kubeconfig", {
            "client-certificate-data": b64(cluster.client_cert_file),
            "client-key-data": b64(cluster.client_key_file)}, inline_ca=True), namespaces=[DATA_NS]),
        source("cert-untrusted", "region-u", kubeconfig(cluster, tmp_path / "rogue.kubeconfig", {
            "client-certificate-data": b64(rogue / "client.crt"),
            "client-key-data": b64(rogue / "client.key")})),
    ])

    for good in ("cert-files", "cert-data"):
        wait_until(lambda: debug_sources(attache)[good]["state"] == "synced", timeout=15,
                   what=f"source {good} to sync")
    # Each authenticated source's Service is served, with its endpoint.
    files_name, data_name = f"certz.{FILES_NS}", f"certz.{DATA_NS}"
    recorder = ads(attache, [files_name, data_name])
    recorder.wait_rows(files_name, [("region-f", "zone-a", "cert-files", FILES_ADDRESS, 8080, "HEALTHY")])
    recorder.wait_rows(data_name, [("region-d", "zone-a", "cert-data", DATA_ADDRESS, 8080, "HEALTHY")])
    recorder.wait_clusters(lambda found: {files_name, data_name} <= set(found),
                           what="both Services in CDS")

    # Refused: never synced, 401 reported.
    untrusted = wait_until(lambda: (s := debug_sources(attache)["cert-untrusted"])["errors"] >= 1
                           and s.get("last_error") and s, timeout=15,
                           what="the untrusted certificate to be refused")
    assert untrusted["state"] != "synced", untrusted
    assert "401" in untrusted["last_error"], untrusted

    # Keys never shown: neither the cluster's client key nor the rogue one.
    status, sources_text = http_get(attache.admin_url + "/debug/sources")
    assert status == 200
    log = attache.log()
    for key_file in (cluster.client_key_file, rogue / "client.key"):
        for fragment in key_fragments(key_file):
            assert fragment not in sources_text, f"part of {key_file} in /debug/sources"
            assert fragment not in log, f"part of {key_file} in attache.log"
    assert "PRIVATE KEY" not in sources_text and "PRIVATE KEY" not in log
