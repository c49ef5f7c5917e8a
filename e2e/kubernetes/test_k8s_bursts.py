"""A burst of watch events (every slice changed, some deleted, Services added
and removed, all at once) ends in exactly the state the API server holds.
attache applies events as they come and rebuilds only the Services they
touched, coalescing a burst into few catalog updates; this test checks that
nothing is lost or left behind on the way.

Endpoint addresses are documentation addresses, data only.
"""
import json
import urllib.request

from kube_support import endpoint_slice, ep, kube_source, service, wait_until

SERVICES = 40


def address(i, j):
    return f"192.0.2.{i * 4 + j + 1}"  # 4 per service, 160 in all


def catalog(attache):
    with urllib.request.urlopen(attache.admin_url + "/debug/catalog", timeout=5) as response:
        services = json.load(response)["services"]
    # The API server's own "kubernetes" Service is left out.
    return {name: (entry["by_source"].get("burst", {}).get("healthy", 0),
                   entry["by_source"].get("burst", {}).get("unhealthy", 0))
            for name, entry in services.items() if name != "kubernetes.default"}


def test_burst_of_events_ends_in_the_api_servers_state(clusters, attaches):
    cluster = clusters.make("burst")
    objects = []
    for i in range(SERVICES):
        objects.append(service(f"svc{i}"))
        for s in range(2):
            objects.append(endpoint_slice(f"svc{i}-{s}", f"svc{i}",
                                          [ep(address(i, 2 * s)), ep(address(i, 2 * s + 1))]))
    cluster.apply(*objects)
    attache = attaches([kube_source("burst", cluster, not_ready="unhealthy")])
    expected = {f"svc{i}.default": (4, 0) for i in range(SERVICES)}
    wait_until(lambda: catalog(attache) == expected, timeout=20, what="the initial state")

    # One apply: in every slice the second endpoint turns not ready; a new
    # Service with its slice.
    burst = [service("late")]
    burst.append(endpoint_slice("late-0", "late", [ep("198.51.100.1")]))
    for i in range(SERVICES):
        for s in range(2):
            burst.append(endpoint_slice(f"svc{i}-{s}", f"svc{i}",
                                        [ep(address(i, 2 * s)), ep(address(i, 2 * s + 1),
                                                                   ready=False)]))
    cluster.apply(*burst)
    # Right behind it: every fourth Service loses a slice, every tenth goes.
    for i in range(0, SERVICES, 4):
        cluster.kubectl("delete", "endpointslice", f"svc{i}-1", "-n", "default")
    for i in range(0, SERVICES, 10):
        cluster.kubectl("delete", "service", f"svc{i}", "-n", "default")

    expected = {}
    for i in range(SERVICES):
        if i % 10 == 0:
            continue
        slices = 1 if i % 4 == 0 else 2
        expected[f"svc{i}.default"] = (slices, slices)
    expected["late.default"] = (1, 0)
    wait_until(lambda: catalog(attache) == expected, timeout=30,
               what="the state after the burst")
