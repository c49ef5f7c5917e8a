"""attache's own lifecycle under a real Envoy: a SIGTERM drains (readiness
fails, no new connections, every stream ends with UNAVAILABLE so clients go
to another replica, exit 0 within a bound); a SIGKILL and a restart on the
same port leave Envoy serving throughout and resyncing without churn.

Timings are printed (run with -s to see them) for docs/reliability.md."""
import signal
import socket
import threading
import time

import grpc

from ads_client import CLUSTER, StreamClosed, XdsStream, envoy_node
from peers.registry import BlackHole
from peers.util import endpoints, http_get, wait_until
from test_envoy import (assert_no_nack, envoy_state, failures,  # noqa: F401 (a fixture)
                        rejected_updates, request_loops, wait_for_endpoints)
from test_replicas import envoy_on_two_replicas, resynced_from

# attache ends its streams after a 1 s grace; everything must be over well
# within Kubernetes' default 30 s termination grace period.
EXIT_BOUND = 5.0


def refuses(port):
    """True when a new TCP connection to 127.0.0.1:port is refused."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return False
    except OSError:
        return True


def readiness(attache):
    """The status and body of /readyz, or None when the admin port is
    closed."""
    try:
        return http_get(attache.admin_url + "/readyz", timeout=1)
    except OSError:
        return None


class DrainWatch:
    """Watches a replica after SIGTERM, from a thread, until it exits: when
    /readyz first failed, when new xDS connections were first refused, when
    the raw stream ended (and how), when the process exited (and how)."""

    def __init__(self, attache, stream):
        self.attache = attache
        self.proc = attache.proc
        self.stream = stream
        self.times = {}
        self.readyz_seen = []
        self.closed = None
        self.exit_code = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self._thread.start()
        return self

    def _mark(self, name):
        self.times.setdefault(name, time.monotonic() - self.started)

    def _run(self):
        deadline = self.started + EXIT_BOUND + 5
        while time.monotonic() < deadline:
            if "refused" not in self.times and refuses(self.attache.xds_port):
                self._mark("refused")
            if "not_ready" not in self.times:
                answer = readiness(self.attache)
                self.readyz_seen.append(answer)
                if answer is None or answer[0] != 200:
                    self._mark("not_ready")
            if self.closed is None:
                try:
                    self.stream.recv(CLUSTER, timeout=0.01)
                except StreamClosed as closed:
                    self.closed = closed
                    self._mark("stream_closed")
                except AssertionError:
                    pass  # nothing yet
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                self._mark("exited")
                if self.closed is not None:
                    return
            time.sleep(0.01)

    def join(self):
        self._thread.join(timeout=EXIT_BOUND + 10)
        return self


def test_sigterm_drains_clients_to_the_other_replica(attache_factory, envoy_factory,
                                                     backend_factory, request_loops):
    """Two replicas behind one xds_cluster, Envoy and a raw ADS client on one
    of them; SIGTERM to that one: it fails readiness and refuses new
    connections before it ends the streams, ends them with UNAVAILABLE,
    exits 0 in time, and Envoy carries on from the other replica with the
    same versions, nothing modified and no failed request."""
    backend, envoy, replicas, serving = envoy_on_two_replicas(
        attache_factory, envoy_factory, backend_factory)
    draining = serving()
    other = next(r for r in replicas if r is not draining)
    assert readiness(draining) == (200, "ready\n")

    raw = XdsStream(draining.xds_address, node=envoy_node("raw-drain"))
    try:
        clusters = raw.subscribe(CLUSTER)
        before = envoy_state(envoy)
        successes = envoy.stats("update_success")
        loop = request_loops(envoy)
        loop.wait_for(lambda results: len(results) >= 10, what="10 requests before SIGTERM")

        watch = DrainWatch(draining, raw).start().join()
        draining.proc = None  # exited (or the assertions below say why not)
        print(f"\nSIGTERM drain timings (s): {watch.times}; stream ended with "
              f"{watch.closed and watch.closed.code}")
        assert watch.exit_code == 0, (watch.exit_code, draining.log()[-2000:])
        assert watch.times["exited"] < EXIT_BOUND, watch.times
        # Kubernetes stops sending it new clients; clients still on it are
        # told to go, with a status gRPC clients retry elsewhere.
        draining_answer = (503, "not ready: draining (shutting down)\n")
        assert "not_ready" in watch.times and draining_answer in watch.readyz_seen, watch.readyz_seen
        assert watch.times["refused"] <= watch.times["stream_closed"], watch.times
        assert watch.times["not_ready"] <= watch.times["stream_closed"], watch.times
        assert watch.closed.code == grpc.StatusCode.UNAVAILABLE, watch.closed
        assert "SIGTERM" in draining.log() and "drain" in draining.log()
    finally:
        raw.close()

    wait_until(lambda: resynced_from(envoy, other, successes), timeout=30, what="envoy on the other replica, updates accepted")
    print(f"envoy resynced from the other replica "
          f"{time.monotonic() - watch.started:.2f}s after SIGTERM")
    loop.wait_for(lambda results: len(results) >= 40, what="40 requests in all")
    results = loop.stop()

    after = envoy_state(envoy)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not failures(results, {backend.name}), failures(results, {backend.name})[:10]
    assert_no_nack(envoy, other, clusters=("echo", "billing"), require_attache_view=True)
    # The other replica names the same clusters with the same version.
    fresh = XdsStream(other.xds_address, node=envoy_node("raw-after"))
    try:
        again = fresh.subscribe(CLUSTER)
        assert again.version_info == clusters.version_info
        assert list(again.resources) == list(clusters.resources)
    finally:
        fresh.close()
    print(f"requests through envoy: {len(results)}, failed: 0")


def test_sigkill_and_restart_envoy_serves_throughout_and_resyncs_without_churn(
        attache_factory, envoy_factory, backend_factory, request_loops):
    """kill -9: Envoy notices, keeps its clusters and endpoints and keeps
    routing; attache comes back on the same port, Envoy reconnects and is
    sent the same versions: nothing modified, nothing rejected, no failed
    request from before the kill to after the resync."""
    backends = [backend_factory("echo-a"), backend_factory("echo-b")]
    attache = attache_factory({"echo": {"endpoints": endpoints(*(b.port for b in backends))}})
    envoy = envoy_factory(attache)
    wait_for_endpoints(envoy, "echo", backends)
    wait_until(lambda: envoy.stat("control_plane.connected_state") == 1, what="envoy connected")
    before = envoy_state(envoy)
    successes = envoy.stats("update_success")
    rejected = rejected_updates(envoy)
    loop = request_loops(envoy)
    loop.wait_for(lambda results: len(results) >= 10, what="10 requests before the kill")

    xds_port, admin_port = attache.xds_port, attache.admin_port
    refused = envoy.stat("cluster.xds_cluster.upstream_cx_connect_fail")
    attache.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: envoy.stat("control_plane.connected_state") == 0, timeout=15,
               what="envoy to notice that attache is gone")
    # Envoy is cut off for real: its reconnection attempts fail (four, with
    # the bootstrap's backoff from 0.1 s doubling: about a second down).
    wait_until(lambda: envoy.stat("cluster.xds_cluster.upstream_cx_connect_fail") >= refused + 4,
               timeout=15, what="four failed attempts of envoy to reconnect")
    # Down for a while: Envoy keeps routing with what it holds.
    count = len(loop.snapshot())
    loop.wait_for(lambda results: len(results) >= count + 30,
                  what="30 requests while attache is down")
    down = envoy_state(envoy)
    assert down == before, {k: (before[k], down[k]) for k in before if before[k] != down[k]}

    attache.start(xds_port, admin_port)
    restarted = time.monotonic()

    def resynced():
        stats = envoy.stats("connected_state|update_success")
        return (stats["control_plane.connected_state"] == 1
                and stats["cluster_manager.cds.update_success"]
                > successes["cluster_manager.cds.update_success"]
                and stats["cluster.echo.update_success"] > successes["cluster.echo.update_success"])
    wait_until(resynced, timeout=30, what="envoy to resync from the restarted attache")
    print(f"\nSIGKILL: down {restarted - killed:.2f}s; envoy resynced "
          f"{time.monotonic() - restarted:.2f}s after the restart")
    count = len(loop.snapshot())
    loop.wait_for(lambda results: len(results) >= count + 10, what="10 requests after")
    results = loop.stop()

    after = envoy_state(envoy)
    assert after == before, {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert rejected_updates(envoy) == rejected
    assert_no_nack(envoy, attache, require_attache_view=True)
    names = {b.name for b in backends}
    assert not failures(results, names), failures(results, names)[:10]
    assert {r[1] for r in results} == names  # both endpoints kept taking traffic
    print(f"requests through envoy: {len(results)}, failed: 0")


def test_sigterm_is_prompt_while_a_source_hangs(attache_factory, backend_factory):
    """A registry that accepts connections and never answers must not hold
    the shutdown: the xDS port closes at once and the process exits in time."""
    hole = BlackHole()
    try:
        backend = backend_factory("echo-a")
        attache = attache_factory(
            {"echo": {"endpoints": endpoints(backend.port)}},
            extra_config={"sources": [
                {"name": "hosts", "type": "file", "path": "hosts.yaml"},
                {"name": "legacy", "type": "registry", "url": hole.url,
                 "services": ["alpha"], "interval": "100ms", "timeout": "2s"}]})
        # The first round (before attache listened) timed out; the second,
        # from the polling thread, is hanging now.
        wait_until(lambda: len(hole.accepted) >= 2, what="a second request to the black hole")
        started = time.monotonic()
        attache.proc.send_signal(signal.SIGTERM)
        refused = wait_until(lambda: refuses(attache.xds_port) and time.monotonic(),
                             timeout=EXIT_BOUND, interval=0.01, what="xDS port closed")
        code = attache.proc.wait(timeout=EXIT_BOUND + 5)
        exited = time.monotonic()
        print(f"\nSIGTERM with a hung registry: refused after {refused - started:.2f}s, "
              f"exited {code} after {exited - started:.2f}s")
        assert code == 0
        assert exited - started < EXIT_BOUND
    finally:
        hole.close()
