"""attache started while one of its two API servers is down: the other
cluster is served at once, /readyz follows catalog.ready_when, and the down
cluster's services appear when it comes up.

Endpoint addresses are documentation addresses, data only.
"""
from kube_support import (cla_rows, debug_sources, endpoint_slice, ep, http_get, kube_source, readyz, service,
                          wait_until)


def test_start_with_one_api_server_down(clusters, attaches, ads):
    up = clusters.make("up")
    down = clusters.make("down")
    up.apply(service("alpha"), service("echo"),
             endpoint_slice("alpha-1", "alpha", [ep("192.0.2.71", zone="zone-a")]),
             endpoint_slice("echo-up", "echo", [ep("192.0.2.72", zone="zone-a")]))
    down.apply(service("beta"), service("echo"),
               endpoint_slice("beta-1", "beta", [ep("198.51.100.71", zone="zone-b")]),
               endpoint_slice("echo-down", "echo", [ep("198.51.100.72", zone="zone-b")]))
    down.kill()  # its kubeconfig, certificates and etcd data stay; nothing listens

    sources = [kube_source("up", up, region="region-u"), kube_source("down", down, region="region-d")]
    attache = attaches(sources)                                 # ready_when: attempted (default)
    strict = attaches(sources, catalog={"ready_when": "synced"})

    # The other cluster is served at once.
    recorder = ads(attache, ["alpha.default", "echo.default", "beta.default"])
    recorder.wait_rows("alpha.default", [("region-u", "zone-a", "up", "192.0.2.71", 8080, "HEALTHY")],
                       timeout=5)
    recorder.wait_rows("echo.default", [("region-u", "zone-a", "up", "192.0.2.72", 8080, "HEALTHY")],
                       timeout=5)
    assert "beta.default" not in recorder.clusters()
    wait_until(lambda: readyz(attache) == 200, timeout=5, what="/readyz 200 (ready_when: attempted)")
    sources_now = debug_sources(attache)
    assert sources_now["up"]["state"] == "synced", sources_now
    assert sources_now["down"]["state"] == "starting", sources_now   # never synced yet
    assert sources_now["down"]["last_error"] and sources_now["down"]["errors"] >= 1, sources_now
    assert down.server in sources_now["down"]["last_error"], sources_now
    # With ready_when: synced, not ready while a source has never synced.
    assert http_get(strict.admin_url + "/readyz") == (503, "not ready: not synced yet: down\n")

    down.start()
    recorder.wait_rows("beta.default", [("region-d", "zone-b", "down", "198.51.100.71", 8080, "HEALTHY")],
                       timeout=30)
    recorder.wait_rows("echo.default", [("region-d", "zone-b", "down", "198.51.100.72", 8080, "HEALTHY"),
                                        ("region-u", "zone-a", "up", "192.0.2.72", 8080, "HEALTHY")])
    assert debug_sources(attache)["down"]["state"] == "synced"
    wait_until(lambda: readyz(strict) == 200, timeout=30, what="/readyz 200 (ready_when: synced)")
    assert readyz(attache) == 200
    assert cla_rows(recorder.cla("alpha.default")[1]) == [
        ("region-u", "zone-a", "up", "192.0.2.71", 8080, "HEALTHY")]
