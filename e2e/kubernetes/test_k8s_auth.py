"""How attache authenticates to a real API server and verifies it: bearer
tokens from a token file and from an exec credential plugin, and TLS checked
against the cluster CA under the kubeconfig's tls-server-name.

Endpoint addresses are documentation addresses, data only.
"""
import json
import os
import pathlib
import stat
import urllib.request

from kube_support import debug_sources, endpoint_slice, ep, service, wait_until


def kubeconfig_with(cluster, path, cluster_fields=None, user=None):
    config = json.loads(pathlib.Path(cluster.kubeconfig).read_text())
    config["clusters"][0]["cluster"].update(cluster_fields or {})
    if user is not None:
        config["users"][0]["user"] = user
    pathlib.Path(path).write_text(json.dumps(config))
    return str(path)


def serves(attache, name):
    return lambda: debug_sources(attache)[name]["state"] == "synced"


def test_token_file_exec_plugin_and_tls_server_name(clusters, attaches, tmp_path):
    cluster = clusters.make("auth")
    cluster.apply(service("authz"), endpoint_slice("authz-1", "authz", [ep("203.0.113.5")]))
    token_file = tmp_path / "token"
    token_file.write_text(cluster.token + "\n")
    plugin = tmp_path / "plugin.sh"
    plugin.write_text("#!/bin/sh\n"
                      "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                      "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"" + cluster.token +
                      "\"}}'\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)

    sources = [
        {"name": "by-token-file", "type": "kubernetes",
         "kubeconfig": kubeconfig_with(cluster, tmp_path / "a.kubeconfig",
                                       user={"tokenFile": str(token_file)})},
        {"name": "by-exec", "type": "kubernetes",
         "kubeconfig": kubeconfig_with(cluster, tmp_path / "b.kubeconfig", user={"exec": {
             "apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin)}})},
        # The serving certificate carries the name "kubernetes" as well.
        {"name": "by-server-name", "type": "kubernetes",
         "kubeconfig": kubeconfig_with(cluster, tmp_path / "c.kubeconfig",
                                       cluster_fields={"tls-server-name": "kubernetes"})},
        {"name": "wrong-server-name", "type": "kubernetes",
         "kubeconfig": kubeconfig_with(cluster, tmp_path / "d.kubeconfig",
                                       cluster_fields={"tls-server-name": "not-the-api-server"})},
        {"name": "wrong-token", "type": "kubernetes",
         "kubeconfig": kubeconfig_with(cluster, tmp_path / "e.kubeconfig",
                                       user={"token": "not-a-valid-token"})},
    ]
    attache = attaches(sources)
    for good in ("by-token-file", "by-exec", "by-server-name"):
        wait_until(serves(attache, good), timeout=15, what=f"source {good} to sync")
    state = debug_sources(attache)
    assert state["wrong-server-name"]["state"] != "synced", state
    assert state["wrong-server-name"]["errors"] >= 1, state
    assert state["wrong-token"]["state"] != "synced", state
    assert "401" in state["wrong-token"]["last_error"], state
    # Secrets never appear in what attache shows or logs.
    assert cluster.token not in json.dumps(state)
    assert cluster.token not in attache.log()
    for path in ("/metrics", "/debug/catalog", "/debug/clients", "/"):
        with urllib.request.urlopen(attache.admin_url + path, timeout=5) as response:
            assert cluster.token not in response.read().decode(), path
