#!/usr/bin/env python3
"""A bounded soak of attache: churn and reconnects for N minutes, then checks
that nothing leaked and every client holds the final state.

    bash scripts/soak.sh                 # 10 minutes
    bash scripts/soak.sh --minutes 1     # a smoke of the same

What runs, all on 127.0.0.1:
- attache (the release build) with three sources: a folder of host files
  for `steady` services, one for `cycling` services and a fake legacy
  registry (`registry` services) whose answers change every few seconds;
- xdsload "steady": clients that stay connected the whole run while it
  rewrites the steady host files at --churn changes/s, checking after each
  phase that every client converged (and decoding every response with the
  official types);
- xdsload "cycling", run again and again: fresh clients connect, churn the
  cycling files, converge, reconnect all at once (-storm) and leave;
  alternately state of the world and delta, and every third cycle is
  killed with SIGKILL halfway instead;
- two real Envoys holding every cluster over ADS, one of them killed and
  restarted every few minutes.

attache's RSS and open file descriptors are sampled every few seconds. At
the end: every xdsload phase converged with no mismatch; both Envoys hold
exactly what a fresh client is served (every cluster, every endpoint); no
error line in attache's log; the RSS's maximum over the last third of the
run after warm-up is within --rss-slack-pct / --rss-slack-mib of its maximum
over the first third; with every client gone, the open file descriptors are
back to the count before the first client. Prints a table and exits 1 if any
check failed. Not part of CI (see docs/reliability.md).
"""
import argparse
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "e2e"))
sys.path.insert(1, str(ROOT / "e2e" / "conformance"))
CACHE = pathlib.Path(os.environ.get("ATTACHE_CACHE", os.path.expanduser("~/.cache/attache")))
XDSLOAD = CACHE / "bin" / "xdsload"

from peers.envoy import Envoy  # noqa: E402
from peers.registry import FakeRegistry  # noqa: E402
from peers.util import http_get, wait_until  # noqa: E402


def log(message):
    print(f"soak {time.strftime('%H:%M:%S')}: {message}", file=sys.stderr, flush=True)


# --- the process under test --------------------------------------------------------
def proc_sample(pid):
    """(RSS in KiB, open fds, threads) of pid from /proc."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


def metric(admin_url, name):
    """Sum of every sample of a metric family in attache's /metrics."""
    status, text = http_get(admin_url + "/metrics")
    assert status == 200, text[:200]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rename_workload(folder, prefix):
    """xdsload names services svcN; a second workload beside the first gets
    its own names (files and services) so that the two never collide."""
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text())
        doc["services"] = {prefix + name: value for name, value in doc["services"].items()}
        (folder / (prefix + path.name)).write_text(json.dumps(doc))
        path.unlink()


class Sampler(threading.Thread):
    def __init__(self, pid, interval):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples = []  # (seconds since start, rss KiB, fds, threads)
        self.started = time.monotonic()
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            try:
                self.samples.append((time.monotonic() - self.started, *proc_sample(self.pid)))
            except OSError:
                return
            self.stop_event.wait(self.interval)


# --- the registry source ---------------------------------------------------------
def registry_host(port, zone):
    return {"ip_address": "127.0.0.1", "port": port, "revision": "r1", "service": "x",
            "service_repo_name": "x", "last_check_in": "2024-05-01T10:00:00.000000",
            "tags": {"az": zone, "region": "r1", "instance_id": f"i-{port}",
                     "canary": False, "load_balancing_weight": 1}}


class RegistryChurn(threading.Thread):
    """Changes one registry service's hosts every `every` seconds."""

    def __init__(self, registry, names, every, seed):
        super().__init__(daemon=True)
        self.registry, self.names, self.every = registry, names, every
        self.rng = random.Random(seed)
        self.stop_event = threading.Event()
        self.changes = 0
        self.next_port = 40000
        for i, name in enumerate(names):
            registry.set_hosts(name, [registry_host(30000 + 10 * i + k, "z1") for k in range(3)])

    def run(self):
        while not self.stop_event.wait(self.every):
            name = self.rng.choice(self.names)
            hosts = list(self.registry.hosts[name])
            if len(hosts) > 2 and self.rng.random() < 0.5:
                hosts.pop(self.rng.randrange(len(hosts)))
            else:
                self.next_port += 1
                hosts.append(registry_host(self.next_port, self.rng.choice(["z1", "z2"])))
            self.registry.set_hosts(name, hosts)
            self.changes += 1


# --- clients -----------------------------------------------------------------------
# xdsload counts a client's initial config as complete when CDS lists exactly
# the services of its own folder; attache serves three sources here, so its
# initial (and storm) phase always waits this long before it checks, with
# the same rule as after every churn phase, that every client holds the
# newest content of every cluster it asked for.
CONVERGE = "15s"


def xdsload_run(folder, target, pid, clients, subscribe, churn, churn_seconds, storm, delta,
                seed, err, timeout=CONVERGE):
    command = [str(XDSLOAD), "run", "-dir", str(folder), "-target", target, "-pid", str(pid),
               "-clients", str(clients), "-subscribe", str(subscribe), "-verify",
               "-seed", str(seed), "-timeout", timeout,
               "-churn", churn, "-churn-seconds", str(churn_seconds)]
    if storm:
        command.append("-storm")
    if delta:
        command.append("-delta")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)


def phase_problems(report, who):
    """What is wrong with an xdsload report (empty when all is well)."""
    problems = []
    for phase in report["phases"]:
        if phase["converged_clients"] != report["clients"]:
            problems.append(f"{who} {phase['name']}: {phase['converged_clients']} of "
                            f"{report['clients']} clients converged")
        expected = phase.get("expected_samples", 0)
        if expected and phase.get("samples", 0) + phase.get("cancelled_samples", 0) != expected:
            problems.append(f"{who} {phase['name']}: {phase.get('samples')} of {expected} "
                            f"changes seen")
    if report["verify_mismatches"]:
        problems.append(f"{who}: {report['verify_mismatches']} responses failed verification")
    return problems


def restore(folder, pristine):
    """Puts back every file of `pristine` that differs in `folder`, renamed
    into place as xdsload writes them. Each xdsload run numbers the
    endpoints it adds from the same port, so a run that found the additions
    of the one before would write duplicates (which attache rightly
    rejects, and then the run's clients could never converge)."""
    for path in pristine.glob("*.json"):
        target = folder / path.name
        body = path.read_bytes()
        if not target.exists() or target.read_bytes() != body:
            tmp = folder / f".{path.name}.restore"
            tmp.write_bytes(body)
            os.replace(tmp, target)


class Cycler(threading.Thread):
    """Runs xdsload on the cycling folder again and again until stopped,
    each run from the folder's first state."""

    def __init__(self, args, folder, pristine, target, pid, work):
        super().__init__(daemon=True)
        self.args, self.folder, self.target, self.pid = args, folder, target, pid
        self.pristine = pristine
        self.err = open(work / "xdsload-cycling.log", "w")
        self.stop_event = threading.Event()
        self.cycles = self.killed = self.clients_connected = 0
        self.problems = []
        self.current = None

    def run(self):
        cycle = 0
        while not self.stop_event.is_set():
            cycle += 1
            kill = cycle % 3 == 2
            restore(self.folder, self.pristine)
            proc = xdsload_run(self.folder, self.target, self.pid, self.args.cycling_clients,
                               self.args.subscribe, str(self.args.churn / 2),
                               self.args.cycle_seconds, storm=True, delta=cycle % 2 == 0,
                               seed=cycle, err=self.err)
            self.current = proc
            if kill:
                # Halfway through its churn: every stream dies without a goodbye.
                if self.stop_event.wait(self.args.cycle_seconds / 2 + 1):
                    pass
                proc.kill()
                proc.wait()
                self.killed += 1
                self.clients_connected += self.args.cycling_clients
                continue
            out, _ = proc.communicate()
            self.cycles += 1
            self.clients_connected += 2 * self.args.cycling_clients  # the storm reconnects
            if proc.returncode != 0:
                self.problems.append(f"cycling xdsload {cycle} exited {proc.returncode}")
                continue
            self.problems += phase_problems(json.loads(out), f"cycling xdsload {cycle}")

    def stop(self):
        self.stop_event.set()
        self.join()


# --- Envoy's view against a fresh client's ----------------------------------------------
def fresh_state(xds_address):
    """{cluster: sorted (address, port, health)} as a client connecting now gets it."""
    from ads_client import CLUSTER, ENDPOINT, XdsStream, by_name, envoy_node
    stream = XdsStream(xds_address, node=envoy_node(f"soak-check-{time.monotonic_ns()}"))
    try:
        clusters = by_name(stream.subscribe(CLUSTER))
        stream.send(ENDPOINT, sorted(clusters))
        held = {}

        def complete(response):
            if response.type_url == ENDPOINT:
                held.update(by_name(response))
            return set(held) >= set(clusters)
        stream.recv_until(complete, timeout=30)
        return {name: sorted((lb.endpoint.address.socket_address.address,
                              lb.endpoint.address.socket_address.port_value,
                              lb.health_status)
                             for group in held[name].endpoints for lb in group.lb_endpoints)
                for name in clusters}
    finally:
        stream.close()


HEALTH = {"UNKNOWN": 0, "HEALTHY": 1, "UNHEALTHY": 2, "DRAINING": 3, "TIMEOUT": 4,
          "DEGRADED": 5}


def envoy_state(envoy):
    """The same shape from Envoy's config_dump."""
    state = {}
    for name, entry in envoy.endpoint_configs().items():
        rows = []
        for group in entry["endpoint_config"].get("endpoints", []):
            for lb in group.get("lb_endpoints", []):
                socket = lb["endpoint"]["address"]["socket_address"]
                rows.append((socket["address"], socket["port_value"],
                             HEALTH[lb.get("health_status", "UNKNOWN")]))
        state[name] = sorted(rows)
    for name in envoy.dynamic_clusters():
        state.setdefault(name, [])
    return state


def differences(expected, got):
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    changed = sorted(n for n in set(expected) & set(got) if expected[n] != got[n])
    return missing, extra, changed


# --- the run -----------------------------------------------------------------------
def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--attache", default=str(ROOT / os.environ.get(
        "ATTACHE_BUILD_DIR", "build") / "attache"))
    parser.add_argument("--steady-services", type=int, default=300)
    parser.add_argument("--cycling-services", type=int, default=100)
    parser.add_argument("--registry-services", type=int, default=20,
                        help="0: no registry source")
    parser.add_argument("--steady-clients", type=int, default=200)
    parser.add_argument("--cycling-clients", type=int, default=100)
    parser.add_argument("--subscribe", type=int, default=20,
                        help="clusters each xdsload client asks for")
    parser.add_argument("--churn", type=float, default=10,
                        help="host-file changes per second (steady; cycling: half)")
    parser.add_argument("--envoys", type=int, default=2)
    parser.add_argument("--sample-every", type=float, default=3)
    parser.add_argument("--rss-slack-pct", type=float, default=5)
    parser.add_argument("--rss-slack-mib", type=float, default=8)
    parser.add_argument("--fd-slack", type=int, default=4,
                        help="allowed difference from the fd baseline (the registry "
                             "client keeps up to 4 connections)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    total = args.minutes * 60
    phase_seconds = max(10.0, min(30.0, total / 6))
    phases = max(2, int((total - 20) // phase_seconds))
    args.cycle_seconds = max(5.0, min(20.0, total / 8))
    envoy_restart_every = max(20.0, total / 4)
    work = pathlib.Path(tempfile.mkdtemp(prefix="attache-soak-"))
    log(f"work folder {work}; {args.minutes:g} min, {phases} steady phases of "
        f"{phase_seconds:.0f}s; load average {os.getloadavg()[0]:.2f}")

    steady, cycling = work / "hosts-steady", work / "hosts-cycling"
    subprocess.run([str(XDSLOAD), "gen", "-dir", str(steady), "-services",
                    str(args.steady_services), "-clusters", "2", "-endpoints", "4"], check=True)
    subprocess.run([str(XDSLOAD), "gen", "-dir", str(cycling), "-services",
                    str(args.cycling_services), "-clusters", "2", "-endpoints", "4"], check=True)
    rename_workload(cycling, "cyc-")
    cycling_pristine = work / "hosts-cycling-pristine"
    shutil.copytree(cycling, cycling_pristine)

    registry = churner = None
    sources = [{"name": "steady", "type": "file", "path": str(steady)},
               {"name": "cycling", "type": "file", "path": str(cycling)}]
    if args.registry_services:
        registry = FakeRegistry().start()
        names = [f"reg{i}" for i in range(args.registry_services)]
        churner = RegistryChurn(registry, names, every=2.0, seed=7)
        sources.append({"name": "legacy", "type": "registry", "url": registry.url,
                        "services": names, "interval": "1s", "timeout": "2s"})
    config = {"xds": {"listen": "127.0.0.1:0"}, "admin": {"listen": "127.0.0.1:0"},
              "catalog": {"debounce": "20ms", "max_delay": "200ms"}, "sources": sources}
    (work / "attache.yaml").write_text(json.dumps(config))
    attache_log = open(work / "attache.log", "w")
    attache = subprocess.Popen([args.attache, "serve", "--config", str(work / "attache.yaml"),
                                "--write-ports", str(work / "ports.json"),
                                "--log-level", "info"],
                               stdout=attache_log, stderr=subprocess.STDOUT)
    results, problems = {}, []
    envoys, steady_proc, cycler, sampler = [], None, None, None
    baseline_rss = baseline_fds = baseline_threads = restarts = 0
    final, expected_clusters, expected_endpoints, stats = (0, 0, 0), 0, 0, {}
    try:
        ports = wait_until(lambda: (work / "ports.json").exists()
                           and json.loads((work / "ports.json").read_text()),
                           timeout=60, what="attache to listen")
        target = f"127.0.0.1:{ports['xds']}"
        admin_url = f"http://127.0.0.1:{ports['admin']}"
        wait_until(lambda: http_get(admin_url + "/readyz")[0] == 200, timeout=30,
                   what="attache ready")
        # Everything attache holds before the first client, after its sources
        # have all been read once.
        baseline_rss, baseline_fds, baseline_threads = proc_sample(attache.pid)
        log(f"attache {attache.pid} ready: RSS {baseline_rss / 1024:.1f} MiB, "
            f"{baseline_fds} fds, {baseline_threads} threads")
        sampler = Sampler(attache.pid, args.sample_every)
        sampler.start()
        if churner:
            churner.start()

        steady_err = open(work / "xdsload-steady.log", "w")
        steady_proc = xdsload_run(steady, target, attache.pid, args.steady_clients,
                                  args.subscribe, ",".join([str(args.churn)] * phases),
                                  phase_seconds, storm=False, delta=False, seed=1,
                                  err=steady_err)
        for i in range(args.envoys):
            envoys.append(Envoy(work / f"envoy{i}", ports["xds"], service="none",
                                node_id=f"soak-envoy-{i}").start(timeout=60))
        cycler = Cycler(args, cycling, cycling_pristine, target, attache.pid, work)
        cycler.start()

        restarts, next_restart = 0, time.monotonic() + envoy_restart_every
        while steady_proc.poll() is None:
            if envoys and time.monotonic() >= next_restart:
                victim = envoys[-1]
                victim.proc.kill()  # SIGKILL: its stream just dies
                victim.proc.wait()
                victim.start(timeout=60)
                restarts += 1
                next_restart = time.monotonic() + envoy_restart_every
            time.sleep(0.5)
        out, _ = steady_proc.communicate()
        if steady_proc.returncode != 0:
            problems.append(f"steady xdsload exited {steady_proc.returncode}")
        else:
            results["steady"] = json.loads(out)
            problems += phase_problems(results["steady"], "steady xdsload")
        log("steady clients done; stopping the cycling clients and the registry churn")
        cycler.stop()
        problems += cycler.problems
        if churner:
            churner.stop_event.set()
            churner.join()

        # Both Envoys converge on exactly what a fresh client gets.
        expected = fresh_state(target)
        for envoy in envoys:
            try:
                wait_until(lambda envoy=envoy: envoy_state(envoy) == fresh_state(target),
                           timeout=60, interval=1, what=f"{envoy.node_id} to converge")
            except AssertionError:
                missing, extra, changed = differences(fresh_state(target), envoy_state(envoy))
                problems.append(f"{envoy.node_id} did not converge: missing {missing[:5]}, "
                                f"extra {extra[:5]}, different {changed[:5]}")
        expected_clusters = len(expected)
        expected_endpoints = sum(len(rows) for rows in expected.values())
        stats = {e.node_id: e.stats("update_rejected|update_success") for e in envoys}

        for envoy in envoys:
            envoy.stop()
        envoys = []
        wait_until(lambda: metric(admin_url, "attache_xds_connected_clients") == 0,
                   timeout=30, what="every client gone")
        sampler.stop_event.set()
        sampler.join()
        # A stream's socket is closed a moment after the client count drops.
        try:
            final = wait_until(lambda: (lambda s: s if abs(s[1] - baseline_fds) <= args.fd_slack
                                        else None)(proc_sample(attache.pid)),
                               timeout=10, what="fds back to baseline")
        except AssertionError:
            final = proc_sample(attache.pid)
            problems.append(f"open fds did not return to the baseline {baseline_fds}: "
                            f"{final[1]} with every client gone")
    except AssertionError as error:
        problems.append(str(error))
    finally:
        if sampler:
            sampler.stop_event.set()
        for envoy in envoys:
            envoy.stop()
        if steady_proc and steady_proc.poll() is None:
            steady_proc.kill()
        if cycler and cycler.is_alive():
            cycler.stop_event.set()
            if cycler.current and cycler.current.poll() is None:
                cycler.current.kill()
        if churner:
            churner.stop_event.set()
        exit_started = time.monotonic()
        attache.send_signal(signal.SIGTERM)
        try:
            code = attache.wait(timeout=30)
        except subprocess.TimeoutExpired:
            attache.kill()
            code = "killed after 30 s"
        exit_seconds = time.monotonic() - exit_started
        if registry:
            registry.stop()

    if code != 0:
        problems.append(f"attache exited {code} on SIGTERM")
    errors = [line for line in (work / "attache.log").read_text(errors="replace").splitlines()
              if len(line.split()) > 1 and line.split()[1] in ("error", "critical")]
    if errors:
        problems.append(f"{len(errors)} error lines in attache's log, first: {errors[0]}")

    # RSS: after warm-up (the first quarter), the last third's peak against
    # the first third's. A run of a few minutes is all warm-up: caches, the
    # first delta streams and malloc's arenas fill in its first minutes, so
    # a short run reports the figures without judging them.
    samples = sampler.samples if sampler else []
    elapsed = samples[-1][0] if samples else 0
    warm = [s for s in samples if s[0] >= elapsed / 4]
    rss_first = rss_last = 0
    rss_verdict = "not judged (under 5 minutes)"
    if len(warm) >= 3:
        third = len(warm) // 3
        rss_first = max(s[1] for s in warm[:third])
        rss_last = max(s[1] for s in warm[-third:])
        allowed = max(rss_first * args.rss_slack_pct / 100, args.rss_slack_mib * 1024)
        rss_verdict = f"flat (allowed +{allowed / 1024:.1f} MiB)"
        if rss_last - rss_first > allowed:
            rss_verdict = f"GREW (allowed +{allowed / 1024:.1f} MiB)"
            if elapsed >= 300:
                problems.append(f"RSS grew: peak {rss_first / 1024:.1f} MiB in the first third "
                                f"after warm-up, {rss_last / 1024:.1f} MiB in the last")
            else:
                rss_verdict += ", not judged (under 5 minutes)"
    else:
        problems.append("too few samples to judge the RSS")

    steady_report = results.get("steady", {"phases": []})
    churn_phases = [p for p in steady_report["phases"] if p["name"].startswith("churn")]
    rows = [
        ("duration", f"{args.minutes:g} min asked, {elapsed / 60:.1f} min with clients "
                     f"({len(samples)} samples every {args.sample_every:g} s)"),
        ("load average at the end (2 cores)", " ".join(f"{x:.2f}" for x in os.getloadavg())),
        ("services (steady + cycling + registry)",
         f"{args.steady_services} + {args.cycling_services} + {args.registry_services}"),
        ("clusters / endpoints at the end", f"{expected_clusters} / {expected_endpoints}"),
        ("steady clients, churn phases converged",
         f"{args.steady_clients}, {sum(p['converged_clients'] == args.steady_clients for p in churn_phases)}"
         f" of {len(churn_phases)}"),
        ("steady changes applied",
         str(sum(p.get("changes", 0) for p in churn_phases))),
        ("steady change-to-client latency p99 (worst phase)",
         f"{max((p.get('p99_ms', 0) for p in churn_phases), default=0):.1f} ms"),
        ("cycling runs completed / killed", f"{cycler.cycles if cycler else 0} / "
                                            f"{cycler.killed if cycler else 0}"),
        ("client connections made by the cycling runs",
         str(cycler.clients_connected if cycler else 0)),
        ("Envoy restarts (SIGKILL)", str(restarts)),
        ("registry changes", str(churner.changes if churner else 0)),
        ("Envoy update_rejected", str({k: sum(v for n, v in s.items() if n.endswith(
            "update_rejected")) for k, s in stats.items()})),
        ("RSS before clients", f"{baseline_rss / 1024:.1f} MiB"),
        ("RSS peak, first / last third after warm-up",
         f"{rss_first / 1024:.1f} / {rss_last / 1024:.1f} MiB: {rss_verdict}"),
        ("RSS peak overall", f"{max((s[1] for s in samples), default=0) / 1024:.1f} MiB"),
        ("open fds: before clients / peak / after", f"{baseline_fds} / "
         f"{max((s[2] for s in samples), default=0)} / {final[1]}"),
        ("threads: before clients / peak / after", f"{baseline_threads} / "
         f"{max((s[3] for s in samples), default=0)} / {final[2]}"),
        ("error lines in attache's log", str(len(errors))),
        ("SIGTERM to exit", f"{exit_seconds:.2f} s, status {code}"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"| {'figure'.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for label, value in rows:
        print(f"| {label.ljust(width)} | {value} |")
    (work / "samples.json").write_text(json.dumps(samples))
    if problems:
        print("\nFAILED:")
        for problem in problems:
            print(f"- {problem}")
    else:
        print("\nall checks passed")
    print(f"(samples, logs: {work})" if args.keep or problems else "")
    if not args.keep and not problems:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
