"""A real Envoy takes its clusters and endpoints from attache (ADS, CDS + EDS)
and real HTTP traffic goes through it to backends on 127.0.0.1.

Envoy's bootstrap has a static listener routing "/" to the dynamic cluster
"echo"; attache serves no listeners to Envoy (no lds_config)."""
import re
import threading
import time

import pytest
import yaml

from peers.grpc_peers import clients_of_node, nacks
from peers.util import Fatal, endpoints, wait_until


# --- helpers -------------------------------------------------------------------
def address(backend):
    return f"127.0.0.1:{backend.port}"


def served_by(envoy, path="/"):
    """One request through Envoy's listener; the name of the backend or None."""
    status, body = envoy.request(path)
    return body if status == 200 else None


def wait_for_traffic_to(envoy, backend, timeout=15):
    """Polls until a request through Envoy is answered by backend."""
    return wait_until(lambda: served_by(envoy) == backend.name, timeout=timeout,
                      what=f"a request through envoy to reach {backend.name}")


def wait_for_endpoints(envoy, cluster, backends, timeout=15):
    expected = sorted(address(b) for b in backends)
    try:
        return wait_until(lambda: envoy.endpoint_addresses(cluster) == expected, timeout=timeout,
                          what=f"envoy's {cluster} endpoints to be {expected}")
    except AssertionError as error:
        raise AssertionError(f"{error}; envoy has {envoy.endpoint_addresses(cluster)}") from None


def rejected_updates(envoy):
    """Every *update_rejected counter of Envoy (CDS and each cluster's EDS)."""
    return {name: value for name, value in envoy.stats("update_rejected").items()
            if name.endswith("update_rejected")}


def assert_no_nack(envoy, attache, clusters=("echo",), require_attache_view=False):
    """Envoy rejected nothing: CDS and every EDS subscription report 0, and
    attache's /debug/clients agrees (nack_count 0 for every type)."""
    rejected = rejected_updates(envoy)
    assert rejected.get("cluster_manager.cds.update_rejected") == 0, rejected
    for cluster in clusters:
        assert rejected.get(f"cluster.{cluster}.update_rejected") == 0, rejected
    assert all(value == 0 for value in rejected.values()), rejected
    seen = clients_of_node(attache.admin_url, envoy.node_id)
    if require_attache_view:
        assert seen, f"attache's /debug/clients does not list node {envoy.node_id}"
    for client in seen:
        assert not nacks(client), f"attache recorded NACKs from envoy: {client}"


class RequestLoop:
    """Sends requests through Envoy one after another in a thread and records
    (status, body or error) for each. Bounded in count and time."""

    def __init__(self, envoy, max_requests=20000, max_seconds=90):
        self.envoy = envoy
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._max_requests = max_requests
        self._max_seconds = max_seconds
        self._thread = threading.Thread(target=self._run, daemon=True, name="request-loop")
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + self._max_seconds
        while (not self._stop.is_set() and len(self.results) < self._max_requests
               and time.monotonic() < deadline):
            try:
                result = self.envoy.request(timeout=10)
            except Exception as error:  # a failed request is a result too
                result = (None, repr(error))
            with self._lock:
                self.results.append(result)

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def wait_for(self, predicate, timeout=30, what="requests"):
        def check():
            if not self._thread.is_alive():
                raise Fatal("the request loop stopped (count or time bound)")
            return predicate(self.snapshot())
        return wait_until(check, timeout=timeout, what=what)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=20)
        return self.snapshot()


@pytest.fixture
def request_loops():
    loops = []

    def make(envoy):
        loop = RequestLoop(envoy)
        loops.append(loop)
        return loop

    yield make
    for loop in loops:
        loop.stop()


def failures(results, allowed_bodies):
    return [r for r in results if r[0] != 200 or r[1] not in allowed_bodies]


def envoy_state(envoy):
    """What Envoy holds for cluster echo, to compare before and after an event."""
    stats = envoy.stats()
    clusters = envoy.dynamic_clusters()
    echo = clusters.get("echo", {"version_info": None, "last_updated": None, "cluster": None})
    echo_cla = envoy.endpoint_configs().get("echo", {}).get("endpoint_config")
    return {
        "cds_version": stats["cluster_manager.cds.version_text"],
        "eds_version": stats.get("cluster.echo.version_text"),
        "cds_dump_version": envoy.cds_config_dump().get("version_info"),
        "echo_version_info": echo["version_info"],
        "echo_last_updated": echo["last_updated"],
        "echo_cluster": echo["cluster"],
        "echo_endpoints": echo_cla,
        "cluster_added": stats["cluster_manager.cluster_added"],
        "cluster_modified": stats["cluster_manager.cluster_modified"],
        "cluster_removed": stats["cluster_manager.cluster_removed"],
        "listener_modified": stats["listener_manager.listener_modified"],
        "listener_added": stats["listener_manager.listener_added"],
        "clusters": sorted(clusters),
    }


def start_echo(attache_factory, envoy_factory, backend):
    """attache serving echo -> backend, and an Envoy that already routes to it."""
    attache = attache_factory({"echo": {"endpoints": endpoints(backend.port)}})
    envoy = envoy_factory(attache)
    wait_for_endpoints(envoy, "echo", [backend])
    wait_for_traffic_to(envoy, backend)
    return attache, envoy


# --- tests ---------------------------------------------------------------------
def test_envoy_gets_clusters_and_endpoints_from_host_file(attache_factory, envoy_factory,
                                                          backend_factory):
    """Clusters (with per-service overrides) and endpoints (locality, weight,
    health) from the host file arrive in Envoy, and traffic reaches exactly the
    routable backends."""
    a, b = backend_factory("echo-a"), backend_factory("echo-b")
    drained = backend_factory("echo-draining")
    billing = backend_factory("billing")
    attache = attache_factory({
        "echo": {
            "connect_timeout": "250ms",
            "lb_policy": "LEAST_REQUEST",
            "endpoints": (endpoints(a.port, region="r1", zone="zone-1", sub_zone="rack-1")
                          + endpoints(b.port, zone="zone-2", weight=3)
                          + endpoints(drained.port, zone="zone-2", health="draining")),
        },
        "billing": {"endpoints": endpoints(billing.port)},
    })
    envoy = envoy_factory(attache)

    # CDS: both services, as EDS clusters over ADS, with the file's settings.
    clusters = wait_until(lambda: (lambda d: {"echo", "billing"} <= d.keys() and d)(
        envoy.dynamic_clusters()), what="clusters echo and billing in envoy's config_dump")
    echo = clusters["echo"]["cluster"]
    assert echo["type"] == "EDS", echo
    assert "ads" in echo["eds_cluster_config"]["eds_config"], echo
    assert echo["connect_timeout"] == "0.250s", echo
    assert echo.get("lb_policy") == "LEAST_REQUEST", echo
    other = clusters["billing"]["cluster"]
    assert other["type"] == "EDS", other
    assert other["connect_timeout"] == "1s", other  # defaults.connect_timeout
    assert other.get("lb_policy", "ROUND_ROBIN") == "ROUND_ROBIN", other
    assert clusters["echo"]["version_info"] and clusters["billing"]["version_info"]

    # EDS: every endpoint, with its locality and weight.
    wait_for_endpoints(envoy, "echo", [a, b, drained])
    wait_for_endpoints(envoy, "billing", [billing])
    cla = envoy.endpoint_configs()["echo"]["endpoint_config"]
    by_address = {}
    for locality in cla["endpoints"]:
        assert locality.get("priority", 0) == 0, locality
        for lb_endpoint in locality["lb_endpoints"]:
            socket = lb_endpoint["endpoint"]["address"]["socket_address"]
            by_address[f"{socket['address']}:{socket['port_value']}"] = (
                locality.get("locality", {}), lb_endpoint)
    assert by_address[address(a)][0] == {"region": "r1", "zone": "zone-1", "sub_zone": "rack-1"}
    assert by_address[address(b)][0] == {"zone": "zone-2"}
    assert by_address[address(b)][1].get("load_balancing_weight") == 3
    # (config_dump rebuilds the CLA from Envoy's hosts, so a draining host shows
    # up there as UNHEALTHY; /clusters below has the EDS health as received.)
    assert by_address[address(drained)][1].get("health_status") in ("DRAINING", "UNHEALTHY")

    # /clusters: the hosts Envoy actually balances over.
    hosts = wait_until(lambda: (lambda h: h and len(h) == 3 and h)(envoy.cluster_hosts("echo")),
                       what="three echo hosts in /clusters")
    assert set(hosts) == {address(a), address(b), address(drained)}
    assert hosts[address(b)]["weight"] == 3
    assert hosts[address(a)]["health_status"]["eds_health_status"] == "HEALTHY"
    assert hosts[address(drained)]["health_status"]["eds_health_status"] == "DRAINING"
    assert set(envoy.cluster_hosts("billing")) == {address(billing)}

    # Real traffic reaches both routable backends and never the draining one.
    seen = set()
    wait_until(lambda: seen.add(served_by(envoy)) or {a.name, b.name} <= seen, timeout=20,
               what="requests through envoy to reach echo-a and echo-b")
    assert seen <= {a.name, b.name}, seen
    assert drained.requests == 0

    stats = envoy.stats("control_plane.connected_state")
    assert stats["control_plane.connected_state"] == 1
    assert_no_nack(envoy, attache, clusters=("echo", "billing"), require_attache_view=True)


def test_host_file_edit_moves_traffic_without_failed_requests(attache_factory, envoy_factory,
                                                              backend_factory, request_loops):
    """Pointing echo at a new backend in the host file moves Envoy's traffic to
    it, and a loop of requests during the switch sees no failed request."""
    old, new = backend_factory("echo-old"), backend_factory("echo-new")
    attache, envoy = start_echo(attache_factory, envoy_factory, old)
    before = envoy_state(envoy)

    loop = request_loops(envoy)
    loop.wait_for(lambda results: len(results) >= 20, what="20 requests before the switch")
    attache.write_hosts({"echo": {"endpoints": endpoints(new.port)}})

    # The old backend keeps running until the switch is observed.
    def first_from_new(results):
        index = next((i for i, r in enumerate(results) if r[1] == new.name), None)
        return None if index is None else (index,)
    (first_new,) = loop.wait_for(first_from_new, timeout=20,
                                 what="a request through envoy to reach the new backend")
    loop.wait_for(lambda results: len(results) >= first_new + 50,
                  what="50 requests after the switch")
    old.stop()
    stopped_at = len(loop.snapshot())
    loop.wait_for(lambda results: len(results) >= stopped_at + 20,
                  what="20 requests after the old backend stopped")
    results = loop.stop()

    assert not failures(results, {old.name, new.name}), failures(results, {old.name, new.name})[:10]
    assert results[0][1] == old.name
    # Once Envoy's only worker has the new endpoint, nothing goes to the old one.
    assert all(body == new.name for _, body in results[first_new:]), results[first_new:][:20]
    wait_for_endpoints(envoy, "echo", [new])
    assert set(envoy.cluster_hosts("echo")) == {address(new)}

    after = envoy_state(envoy)
    # Only the endpoints changed: the cluster itself was not touched.
    assert after["echo_cluster"] == before["echo_cluster"]
    assert after["cluster_modified"] == before["cluster_modified"]
    assert after["cluster_removed"] == before["cluster_removed"]
    assert after["eds_version"] != before["eds_version"]
    assert_no_nack(envoy, attache)


def _invalid_yaml(backends):
    return "services:\n  echo:\n    endpoints: [ {address: 127.0.0.1, port: %d\n" % backends[1].port


def _port_70000(backends):
    # Valid YAML; one good entry (the new backend) and one bad one. Applying the
    # good part would move traffic, so a partial accept is visible too.
    return yaml.safe_dump({"services": {"echo": {
        "endpoints": endpoints(backends[1].port) + endpoints(70000)}}})


BROKEN_EDITS = {"invalid_yaml": _invalid_yaml, "port_70000": _port_70000}


@pytest.mark.parametrize("edit", sorted(BROKEN_EDITS))
def test_broken_host_file_edit_changes_nothing(attache_factory, envoy_factory, backend_factory,
                                               request_loops, edit):
    """A host file edit that does not parse or validate is rejected: Envoy gets
    no update (same versions, nothing re-sent, nothing removed), traffic keeps
    flowing to the last good backend, and Envoy rejects nothing."""
    old, new = backend_factory("echo-old"), backend_factory("echo-new")
    barrier = backend_factory("barrier")
    attache, envoy = start_echo(attache_factory, envoy_factory, old)
    before = envoy_state(envoy)
    attempts_before = envoy.stats("update_attempt")
    log_offset = len(attache.log())

    loop = request_loops(envoy)
    loop.wait_for(lambda results: len(results) >= 10, what="10 requests before the edit")
    attache.write_hosts_text(BROKEN_EDITS[edit]((old, new)))

    # attache says it rejected the file ...
    rejection = re.compile(r"(error|invalid|reject|fail|bad|cannot|can't|could not)", re.I)

    def rejected():
        fresh = attache.log()[log_offset:]
        return [line for line in fresh.splitlines()
                if "hosts.yaml" in line and rejection.search(line)]
    try:
        lines = wait_until(rejected, timeout=10, what="attache to log that it rejected hosts.yaml")
    except AssertionError as error:
        raise AssertionError(f"{error}\n--- attache log since the edit ---\n"
                             f"{attache.log()[log_offset:][-3000:]}") from None
    if edit == "port_70000":
        assert any("port" in line or "70000" in line for line in lines), lines

    # ... and Envoy got nothing: same versions, no new update attempt.
    during = envoy_state(envoy)
    assert during == before, (before, during)
    assert envoy.stats("update_attempt") == attempts_before
    assert served_by(envoy) == old.name

    # A good edit after the broken one (a new service, echo unchanged) shows
    # attache moved on from the broken content without ever applying it:
    # echo was never modified, removed or re-added in Envoy.
    attache.write_hosts({"echo": {"endpoints": endpoints(old.port)},
                         "barrier": {"endpoints": endpoints(barrier.port)}})
    wait_until(lambda: "barrier" in envoy.dynamic_clusters(), what="cluster barrier in envoy")
    wait_for_endpoints(envoy, "barrier", [barrier])
    loop.wait_for(lambda results: len(results) >= 30, what="30 requests in all")
    results = loop.stop()

    # (The EDS and CDS response versions do change now: they cover what the
    # stream subscribes to, which includes barrier. Per-cluster entries do not.)
    after = envoy_state(envoy)
    for key in ("echo_version_info", "echo_last_updated", "echo_cluster", "echo_endpoints",
                "cluster_modified", "cluster_removed", "listener_modified"):
        assert after[key] == before[key], (key, before[key], after[key])
    assert after["cluster_added"] == before["cluster_added"] + 1  # barrier only
    assert after["clusters"] == sorted(before["clusters"] + ["barrier"])
    assert not failures(results, {old.name}), failures(results, {old.name})[:10]
    assert new.requests == 0 and barrier.requests == 0
    assert_no_nack(envoy, attache, clusters=("echo", "barrier"))


def test_attache_restart_changes_nothing_envoy_holds(attache_factory, envoy_factory,
                                                     backend_factory, request_loops):
    """attache restarting on the same ports: Envoy reconnects, gets the same
    versions back, modifies nothing, and traffic never stops."""
    backend = backend_factory("echo-a")
    attache, envoy = start_echo(attache_factory, envoy_factory, backend)
    wait_until(lambda: envoy.stat("control_plane.connected_state") == 1,
               what="envoy connected to attache")
    before = envoy_state(envoy)
    successes = envoy.stats("update_success")

    loop = request_loops(envoy)
    loop.wait_for(lambda results: len(results) >= 10, what="10 requests before the restart")
    attache.restart()

    # Envoy is back on a new stream and has accepted fresh CDS and EDS answers.
    def reconnected():
        stats = envoy.stats("connected_state|update_success")
        return (stats["control_plane.connected_state"] == 1
                and stats["cluster_manager.cds.update_success"]
                > successes["cluster_manager.cds.update_success"]
                and stats["cluster.echo.update_success"] > successes["cluster.echo.update_success"])
    wait_until(reconnected, timeout=30,
               what="envoy to reconnect and accept CDS and EDS from the restarted attache")
    loop.wait_for(lambda results: len(results) >= 30, what="30 requests in all")
    results = loop.stop()

    after = envoy_state(envoy)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not failures(results, {backend.name}), failures(results, {backend.name})[:10]
    assert_no_nack(envoy, attache, require_attache_view=True)


def test_changed_cluster_warms_at_once_and_keeps_serving(attache_factory, backend_factory,
                                                         envoy_factory, request_loops):
    """Checklist 23: after a CDS change to an EDS cluster Envoy warms the new
    cluster and waits for its ClusterLoadAssignment; attache sends it even
    though the endpoints did not change. Without that, the cluster would stay
    warming until Envoy's 15 s initial_fetch_timeout and then come up empty."""
    backend = backend_factory("a")
    services = {"echo": {"endpoints": endpoints(backend.port)}}
    attache = attache_factory(services)
    envoy = envoy_factory(attache)
    wait_for_traffic_to(envoy, backend)
    modified = envoy.stat("cluster_manager.cluster_modified")
    loop = request_loops(envoy)

    services["echo"]["lb_policy"] = "LEAST_REQUEST"
    started = time.monotonic()
    attache.write_hosts(services)
    wait_until(lambda: envoy.dynamic_clusters()["echo"]["cluster"].get("lb_policy")
               == "LEAST_REQUEST", timeout=10, what="envoy to take the new cluster")
    warmed_after = time.monotonic() - started
    assert envoy.stat("cluster_manager.cluster_modified") == modified + 1
    assert envoy.stat("cluster_manager.warming_clusters") == 0
    # Well inside the 15 s initial fetch timeout: the assignment was pushed.
    assert warmed_after < 5, f"cluster took {warmed_after:.1f}s to warm"
    assert envoy.endpoint_addresses("echo") == [address(backend)]
    loop.wait_for(lambda results: len(results) > 20, what="requests after the change")
    results = loop.stop()
    assert not failures(results, {backend.name}), failures(results, {backend.name})[:5]
    assert_no_nack(envoy, attache)
