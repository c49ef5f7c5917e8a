"""A real Envoy takes the resilience attache serves with every cluster and
acts on it: outlier detection ejects a dead host, active health checks (when
configured) mark one, and Envoy accepts every variant (no NACK). Every
endpoint here is a backend on 127.0.0.1."""
import pytest

from peers.util import endpoints, wait_until


def cluster_config(envoy, name):
    for entry in envoy.cds_config_dump().get("dynamic_active_clusters", []):
        if entry["cluster"]["name"] == name:
            return entry["cluster"]
    return None


def flags(envoy, backend):
    """The health flags Envoy shows for backend's host."""
    host = (envoy.cluster_hosts("echo") or {}).get(f"127.0.0.1:{backend.port}", {})
    return host.get("health_status", {})


def test_defaults_reach_envoy_and_a_dead_host_is_ejected(attache_factory, backend_factory,
                                                         envoy_factory):
    alive, dead = backend_factory("alive"), backend_factory("dead")
    attache = attache_factory({"echo": {"endpoints": endpoints(alive.port, dead.port)}})
    envoy = envoy_factory(attache)
    cluster = wait_until(lambda: cluster_config(envoy, "echo"), timeout=15, what="cluster echo")
    outlier = cluster["outlier_detection"]
    assert outlier["max_ejection_percent"] == 100, outlier
    assert outlier["split_external_local_origin_errors"] is True, outlier
    assert outlier["consecutive_local_origin_failure"] == 3, outlier
    limits = cluster["circuit_breakers"]["thresholds"][0]
    assert limits["max_retries"] == 4294967295 and "retry_budget" not in limits, limits
    assert "healthy_panic_threshold" in cluster["common_lb_config"], cluster
    assert envoy.stat("cluster_manager.cds.update_rejected") == 0

    dead.kill()  # connections refused from now on
    def ejected():
        envoy.request()  # traffic is what outlier detection learns from
        return flags(envoy, dead).get("failed_outlier_check")
    wait_until(ejected, timeout=15, what="Envoy to eject the dead host")
    assert not flags(envoy, alive).get("failed_outlier_check")
    answers = {envoy.request()[1] for _ in range(20)}
    assert answers == {"alive"}, answers


@pytest.mark.parametrize("check", [
    {"type": "http", "path": "/healthz"}, {"type": "tcp"}])
def test_active_health_checks_mark_a_dead_host(attache_factory, backend_factory, envoy_factory,
                                               check):
    alive, dead = backend_factory("alive"), backend_factory("dead")
    attache = attache_factory({"echo": {
        "health_check": dict(check, interval="200ms", timeout="100ms", unhealthy_threshold=1,
                             no_traffic_interval="200ms"),
        "endpoints": endpoints(alive.port, dead.port)}})
    envoy = envoy_factory(attache)
    cluster = wait_until(lambda: cluster_config(envoy, "echo"), timeout=15, what="cluster echo")
    assert len(cluster["health_checks"]) == 1, cluster
    wait_until(lambda: alive.requests > 0 or check["type"] == "tcp", timeout=15,
               what="a health check request to reach the backend")
    dead.kill()
    wait_until(lambda: flags(envoy, dead).get("failed_active_health_check"), timeout=15,
               what="Envoy's health checks to mark the dead host")
    assert not flags(envoy, alive).get("failed_active_health_check")
    assert envoy.stat("cluster_manager.cds.update_rejected") == 0


def test_every_setting_away_from_its_default_is_accepted(attache_factory, backend_factory,
                                                         envoy_factory):
    backend = backend_factory("a")
    attache = attache_factory({"echo": {
        "lb_policy": "LEAST_REQUEST", "failover": "weighted",
        "outlier_detection": {"consecutive_5xx": 0, "consecutive_gateway_failure": 7,
                              "consecutive_local_origin_failure": 2,
                              "failure_percentage_threshold": 0, "interval": "2s",
                              "base_ejection_time": "5s", "max_ejection_time": "50s",
                              "max_ejection_percent": 40},
        "health_check": {"type": "grpc", "service_name": "echo.v1", "interval": "10s",
                         "no_traffic_interval": "30s"},
        "circuit_breakers": {"max_connections": 10, "max_pending_requests": 20,
                             "max_requests": 30, "max_retries": 5, "retry_budget": {"budget_percent": 20}},
        "healthy_panic_threshold": 30, "overprovisioning_factor": 200,
        "endpoints": endpoints(backend.port)}})
    envoy = envoy_factory(attache)
    cluster = wait_until(lambda: cluster_config(envoy, "echo"), timeout=15, what="cluster echo")
    assert cluster["outlier_detection"]["max_ejection_percent"] == 40, cluster
    assert cluster["circuit_breakers"]["thresholds"][0]["max_requests"] == 30, cluster
    assert cluster["health_checks"][0]["grpc_health_check"]["service_name"] == "echo.v1"
    cla = envoy.endpoint_configs()["echo"]["endpoint_config"]
    assert cla["policy"]["overprovisioning_factor"] == 200, cla
    assert envoy.stat("cluster_manager.cds.update_rejected") == 0


def test_the_documented_bootstrap_and_route_are_valid_envoy_config(tmp_path):
    """docs/examples/envoy-bootstrap.yaml (with the retry policy that works with
    priorities) passes Envoy's own validation."""
    import pathlib
    import subprocess

    from peers.envoy import envoy_binary

    example = pathlib.Path(__file__).resolve().parents[2] / "docs" / "examples" / \
        "envoy-bootstrap.yaml"
    run = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(example),
                          "--disable-hot-restart", "--base-id", "917"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
