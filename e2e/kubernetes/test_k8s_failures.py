"""A Kubernetes cluster failing behind attache: a crashed cluster (API server
and etcd SIGKILLed) and an API server restarted over a compacted etcd (watch
resourceVersion expired: 410). attache must keep serving the last good
endpoints, report the source stale, keep following the other cluster, and
converge without churn when the cluster is back.

Endpoint addresses are documentation addresses, data only: nothing connects
to them.
"""
import base64
import time
import types

import pytest

from kube_support import (apiserver_watches, attache_watching, cla_rows, debug_sources, endpoint_slice, ep,
                          etcd_compact, etcd_post, etcd_revision, kube_source, log_count,
                          open_watches, proxied_kubeconfig, service, TcpProxy, wait_until)

ECHO = "echo.default"

# Bounded observation windows (seconds) for what must NOT happen once attache
# watches again: generous next to the milliseconds attache needs to act.
SETTLE = 4.0


@pytest.fixture(scope="module")
def world(clusters, attaches):
    east = clusters.make("east")
    west = clusters.make("west")
    baseline = {"east": apiserver_watches(east), "west": apiserver_watches(west)}
    attache = attaches([kube_source("east", east, region="region-e"),
                        kube_source("west", west, region="region-w")])
    wait_until(lambda: all(s["state"] == "synced" for s in debug_sources(attache).values()),
               timeout=20, what="both sources synced")
    return types.SimpleNamespace(east=east, west=west, attache=attache, baseline=baseline)


def restart(cluster):
    """(Re)starts a cluster from whatever state it is in. KubeCluster.start()
    after kill_apiserver() alone would start a second etcd next to the one
    still running (it fails to bind, but the old one answers its health
    check), so stop what is left first: the data survives."""
    if not cluster.running():
        cluster.kill()
        cluster.start()


@pytest.fixture
def running(world):
    """Both clusters up at the start of each test (a failed test may have left one down)."""
    restart(world.east)
    restart(world.west)
    return world


def holds_for(predicate, seconds, what):
    """Asserts that predicate stays true for `seconds` (a bounded observation
    window, for things that must NOT happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"violated: {what}"
        time.sleep(0.05)


def row(source, zone, address, health="HEALTHY", port=8080):
    return ("region-e" if source == "east" else "region-w", zone, source, address, port, health)


def test_crashed_cluster_keeps_serving_stale_and_converges_when_back(running, ads):
    east, west, attache = running.east, running.west, running.attache
    east.apply(service("echo"), endpoint_slice("echo-east", "echo", [
        ep("192.0.2.1", zone="zone-a"), ep("192.0.2.2", zone="zone-b")]))
    west.apply(service("echo"), endpoint_slice("echo-west", "echo", [ep("198.51.100.1", zone="zone-a")]))
    east_rows = [row("east", "zone-a", "192.0.2.1"), row("east", "zone-b", "192.0.2.2")]
    recorder = ads(attache, [ECHO])
    version, cla = recorder.wait_rows(ECHO, east_rows + [row("west", "zone-a", "198.51.100.1")])
    before_kill = cla.SerializeToString(deterministic=True)

    east.kill()  # SIGKILL kube-apiserver and etcd
    east_state = wait_until(lambda: (s := debug_sources(attache)["east"])["state"] == "stale" and s,
                            timeout=20, what="east to show stale")
    assert east_state["last_error"], east_state
    assert east.server in east_state["last_error"], east_state
    assert debug_sources(attache)["west"]["state"] == "synced"
    # Nothing was withdrawn: the very same assignment, same version.
    assert recorder.served_rows(ECHO) == cla_rows(cla)
    assert recorder.cla(ECHO)[0] == version
    assert recorder.cla(ECHO)[1].SerializeToString(deterministic=True) == before_kill

    # The other cluster keeps updating, and east's last good endpoints stay.
    west.apply(endpoint_slice("echo-west", "echo", [
        ep("198.51.100.1", zone="zone-a"), ep("198.51.100.2", zone="zone-b")]))
    with_west_change = east_rows + [row("west", "zone-a", "198.51.100.1"),
                                    row("west", "zone-b", "198.51.100.2")]
    version, cla = recorder.wait_rows(ECHO, with_west_change)
    assert debug_sources(attache)["east"]["state"] == "stale"
    wait_until(lambda: debug_sources(attache)["east"]["errors"] >= 3, timeout=20,
               what="attache to keep retrying east")
    responses = len(recorder.cla_history(ECHO))

    # Back, with the same data (etcd's files survived the SIGKILL).
    east.start()
    wait_until(lambda: attache_watching(east, running.baseline["east"]), timeout=30,
               what="attache's watches on east's restarted API server")
    # attache is watching again (and has listed again if its resourceVersion
    # had expired). Bounded observation window (absence cannot be polled): the
    # recovery must neither change the assignment nor even re-send it.
    holds_for(lambda: len(recorder.cla_history(ECHO)) == responses, 3.0,
              what="no echo.default response after the recovery")
    assert recorder.cla(ECHO)[0] == version, "the recovery changed the version (churn)"
    assert recorder.served_rows(ECHO) == sorted(with_west_change)

    # Changes made after the recovery are followed.
    east.apply(endpoint_slice("echo-east", "echo", [
        ep("192.0.2.1", zone="zone-a"), ep("192.0.2.3", zone="zone-c")]))
    recorder.wait_rows(ECHO, [row("east", "zone-a", "192.0.2.1"), row("east", "zone-c", "192.0.2.3"),
                              row("west", "zone-a", "198.51.100.1"),
                              row("west", "zone-b", "198.51.100.2")])
    assert debug_sources(attache)["east"]["state"] == "synced"
    assert recorder.closed is None


def test_expired_resource_version_relists_without_dropping_endpoints(running, ads):
    """A real 410: the API server is killed, etcd moves on and is compacted
    while it is down, and the restarted API server's watch cache starts at
    etcd's current revision, so attache's watch resourceVersion is too old."""
    east, west, attache = running.east, running.west, running.attache
    east.apply(service("echo"), endpoint_slice("echo-east", "echo", [
        ep("192.0.2.1", zone="zone-a"), ep("192.0.2.3", zone="zone-c")]))
    west.apply(service("echo"), service("churn"),
               endpoint_slice("echo-west", "echo", [ep("198.51.100.1", zone="zone-a")]))
    east_rows = [row("east", "zone-a", "192.0.2.1"), row("east", "zone-c", "192.0.2.3")]
    recorder = ads(attache, [ECHO])
    # Several changes: one more echo endpoint, and churn on another Service.
    west.apply(endpoint_slice("echo-west", "echo", [
        ep("198.51.100.1", zone="zone-a"), ep("198.51.100.3", zone="zone-a")]))
    for n in range(3):
        west.apply(endpoint_slice("churn", "churn", [ep(f"198.51.100.{100 + n}")]))
    expected = east_rows + [row("west", "zone-a", "198.51.100.1"), row("west", "zone-a", "198.51.100.3")]
    version, cla = recorder.wait_rows(ECHO, expected)
    wait_until(lambda: debug_sources(attache)["west"]["state"] == "synced", timeout=10,
               what="west synced")
    floor = len(expected)
    watched_from = len(recorder.cla_history(ECHO)) - 1  # index of `cla`
    since = recorder.cla_history(ECHO)[-1][0]

    slices_path = f"{west.server}/apis/discovery.k8s.io/v1/endpointslices"
    expired_line = f"{slices_path}: resourceVersion expired, listing again"
    listed_line = f"{slices_path}: listed"
    expired_before, listed_before = log_count(attache, expired_line), log_count(attache, listed_line)

    west.kill_apiserver()
    wait_until(lambda: debug_sources(attache)["west"]["state"] == "stale", timeout=20,
               what="west to show stale")
    # etcd moves on past anything attache saw (a key outside /registry, which
    # the API server ignores), then is compacted up to its current revision.
    etcd_post(west, "/v3/kv/put", {"key": base64.b64encode(b"/attache-e2e/bump").decode(),
                                   "value": base64.b64encode(b"1").decode()})
    compacted = etcd_revision(west)
    etcd_compact(west, compacted)
    with pytest.raises(Exception, match="compacted|400|HTTP Error"):
        etcd_post(west, "/v3/kv/range", {"key": base64.b64encode(b"/registry/").decode(),
                                         "revision": str(compacted - 1)})
    restart(west)  # only the API server was down; etcd restarts on its (compacted) data

    wait_until(lambda: log_count(attache, expired_line) > expired_before, timeout=30,
               what=f"attache to log {expired_line!r}")
    wait_until(lambda: log_count(attache, listed_line) > listed_before, timeout=15,
               what="attache to list west's EndpointSlices again")
    wait_until(lambda: debug_sources(attache)["west"]["state"] == "synced", timeout=15,
               what="west synced after the relist")
    # Same content after the relist: same version (versions are content hashes).
    assert recorder.cla(ECHO)[0] == version
    assert cla_rows(recorder.cla(ECHO)[1]) == sorted(expected)

    # And the watch after the relist follows changes.
    west.apply(endpoint_slice("echo-west", "echo", [
        ep("198.51.100.1", zone="zone-a"), ep("198.51.100.3", zone="zone-a"),
        ep("198.51.100.4", zone="zone-b")]))
    recorder.wait_rows(ECHO, expected + [row("west", "zone-b", "198.51.100.4")])

    history = recorder.cla_history(ECHO)[watched_from:]
    assert recorder.closed is None, recorder.closed
    # Nor was the cluster withdrawn through CDS at any point.
    with recorder.lock:
        cds_since = [(v, sorted(c)) for t, v, c in recorder.cds if t >= since]
    assert all(ECHO in names for _, names in cds_since), cds_since
    fewer = [(v, cla_rows(c)) for _, v, c in history if len(cla_rows(c)) < floor]
    assert not fewer, f"echo.default went below {floor} endpoints: {fewer}"


def test_dropped_watch_on_a_healthy_api_server_is_not_stale_once_resumed(running, attaches, ads,
                                                                         tmp_path):
    """The connection to a healthy API server drops (a proxy in between cuts
    it, as a network blip or an idle timeout would). attache reports the
    source stale, watches again from its resourceVersion (still valid: no
    410), and from then on is back in touch: the source must not stay stale,
    and max_staleness must not withdraw a cluster attache is watching."""
    west = running.west
    proxy = TcpProxy(west.port)
    try:
        kubeconfig = proxied_kubeconfig(west, proxy, tmp_path / "via-proxy.kubeconfig")
        west.apply(service("blip"), endpoint_slice("blip-1", "blip", [
            ep("198.51.100.61", zone="zone-a"), ep("198.51.100.62", zone="zone-b")]))
        # The module's attache watches west too: count with its watches open.
        wait_until(lambda: attache_watching(west, running.baseline["west"]), timeout=30,
                   what="the module attache's watches on west")
        baseline = open_watches(west)
        attache = attaches([{"name": "west", "type": "kubernetes", "kubeconfig": str(kubeconfig),
                             "locality": {"region": "region-w"}, "max_staleness": "3s"}])
        recorder = ads(attache, ["blip.default"])
        expected = [row("west", "zone-a", "198.51.100.61"), row("west", "zone-b", "198.51.100.62")]
        version, _ = recorder.wait_rows("blip.default", expected)
        wait_until(lambda: attache_watching(west, baseline), timeout=10, what="attache's watches")
        accepted = proxy.accepted
        errors = debug_sources(attache)["west"]["errors"]

        proxy.cut()
        wait_until(lambda: debug_sources(attache)["west"]["errors"] > errors, timeout=10,
                   what="attache to notice the dropped watch")
        # Both informers (Services, EndpointSlices) connect again through the proxy.
        wait_until(lambda: proxy.accepted >= accepted + 2 and attache_watching(west, baseline),
                   timeout=15, what="attache to watch again")
        errors = debug_sources(attache)["west"]["errors"]
        # Bounded observation window (absence cannot be polled): for longer
        # than max_staleness (3 s), the endpoints of the cluster attache is
        # watching again must stay, and the source must come back to synced.
        problems = []
        deadline = time.monotonic() + 3.0 + SETTLE
        while time.monotonic() < deadline:
            state = debug_sources(attache)["west"]
            rows = recorder.served_rows("blip.default")
            if rows != sorted(expected) and not problems:
                problems.append(f"endpoints withdrawn while attache watches the API server: "
                                f"{rows}; source: {state}")
            time.sleep(0.1)
        state = debug_sources(attache)["west"]
        if state["state"] != "synced":
            problems.append(f"source still {state['state']!r} {3.0 + SETTLE:.0f}s after the watch "
                            f"resumed: {state}")
        assert state["errors"] == errors, f"the resumed watch failed again: {state}"
        assert not problems, "\n".join(problems)
        assert recorder.cla("blip.default")[0] == version
    finally:
        proxy.close()


def test_changes_made_while_attache_was_cut_off_are_picked_up(running, attaches, ads,
                                                               tmp_path):
    """A partition between attache and a healthy API server: attache keeps
    the last good endpoints (stale); the cluster changes meanwhile (one
    endpoint replaced, a new Service added); when the partition heals, attache
    converges to the true state."""
    west = running.west
    proxy = TcpProxy(west.port)
    try:
        kubeconfig = proxied_kubeconfig(west, proxy, tmp_path / "partition.kubeconfig")
        west.apply(service("part"), endpoint_slice("part-1", "part", [
            ep("198.51.100.71", zone="zone-a"), ep("198.51.100.72", zone="zone-a")]))
        attache = attaches([{"name": "west", "type": "kubernetes", "kubeconfig": str(kubeconfig),
                             "locality": {"region": "region-w"}}])
        recorder = ads(attache, ["part.default", "late.default"])
        before = [row("west", "zone-a", "198.51.100.71"), row("west", "zone-a", "198.51.100.72")]
        recorder.wait_rows("part.default", before)

        proxy.partition()
        wait_until(lambda: debug_sources(attache)["west"]["state"] == "stale", timeout=15,
                   what="the source to turn stale")
        # Made straight to the API server, which attache cannot reach now.
        west.apply(endpoint_slice("part-1", "part", [
            ep("198.51.100.71", zone="zone-a"), ep("198.51.100.73", zone="zone-b")]))
        west.apply(service("late"), endpoint_slice("late-1", "late", [
            ep("198.51.100.74", zone="zone-a")]))
        assert recorder.served_rows("part.default") == sorted(before)

        proxy.heal()
        after = [row("west", "zone-a", "198.51.100.71"), row("west", "zone-b", "198.51.100.73")]
        recorder.wait_rows("part.default", after, timeout=30)
        recorder.wait_rows("late.default", [row("west", "zone-a", "198.51.100.74")], timeout=30)
        wait_until(lambda: debug_sources(attache)["west"]["state"] == "synced", timeout=15,
                   what="the source to be synced again")
    finally:
        proxy.close()
