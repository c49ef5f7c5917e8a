"""deploy/kubernetes: the manifests pass server-side validation on a real
kube-apiserver, the ClusterRole lets attache's ServiceAccount list and watch
Services and EndpointSlices and nothing else, and the ConfigMap holds a config
attache accepts."""
import os
import pathlib
import subprocess

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
ATTACHE_BIN = os.environ.get("ATTACHE_BIN", str(ROOT / "build" / "attache"))
SA = "system:serviceaccount:attache:attache"


def documents():
    for path in sorted(DEPLOY.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path.name, document


def test_manifests_pass_server_side_dry_run(clusters):
    cluster = clusters.make("manifests")
    # Namespaced objects are checked against an existing namespace.
    cluster.kubectl("apply", "-f", str(DEPLOY / "namespace.yaml"))
    result = cluster.kubectl("apply", "--dry-run=server", "-f", str(DEPLOY))
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in documents()}
    for kind, name in kinds:
        assert f"{name}" in result.stdout and "(server dry run)" in result.stdout, result.stdout
    assert {"Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
            "ConfigMap", "Secret", "PodDisruptionBudget"} <= {kind for kind, _ in kinds}


def test_cluster_role_is_read_only_on_services_and_slices(clusters):
    cluster = clusters.make("rbac")
    cluster.kubectl("apply", "-f", str(DEPLOY / "namespace.yaml"))
    cluster.kubectl("apply", "-f", str(DEPLOY / "rbac.yaml"))

    def can(verb, resource):
        out = cluster.kubectl("auth", "can-i", verb, resource, "--all-namespaces",
                              f"--as={SA}", check=False)
        return out.stdout.strip() == "yes"
    for resource in ("services", "endpointslices.discovery.k8s.io"):
        assert can("list", resource) and can("watch", resource), resource
        for verb in ("get", "create", "update", "patch", "delete"):
            assert not can(verb, resource), (verb, resource)
    for resource in ("secrets", "pods", "configmaps", "endpoints", "nodes"):
        assert not can("list", resource), resource


def test_config_map_holds_a_valid_config(clusters, tmp_path):
    cluster = clusters.make("config")
    docs = dict((doc["kind"], doc) for _, doc in documents()
                if doc["kind"] in ("ConfigMap", "Secret"))
    config = yaml.safe_load(docs["ConfigMap"]["data"]["attache.yaml"])
    # Outside a pod: the in-cluster source gets a kubeconfig, and the remote
    # cluster's kubeconfig comes from the Secret's layout.
    for name, text in docs["Secret"]["stringData"].items():
        (tmp_path / name).write_text(text)
    for source in config["sources"]:
        if "kubeconfig" in source:
            source["kubeconfig"] = str(tmp_path / pathlib.Path(source["kubeconfig"]).name)
        else:
            source["kubeconfig"] = str(cluster.kubeconfig)
    path = tmp_path / "attache.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([ATTACHE_BIN, "validate", "--config", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
