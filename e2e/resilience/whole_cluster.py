"""The loss of a whole Kubernetes cluster, end to end, with attache's defaults.

Run by test_whole_cluster.py inside a network namespace of its own
(`unshare -n`), where nothing routes out: two real clusters (etcd +
kube-apiserver each), east in us-east-1a and west in us-east-1b, each with
two workload hosts (host.py: HTTP on :8080, gRPC on :9090) on addresses that
exist only inside the namespace. Service web (HTTP) and grpc-web (gRPC) carry
`attache.io/failover: zone-failover` and nothing else; attache runs with no
settings beyond its two kubernetes sources.

Clients: an Envoy in us-east-1a (the zone that dies) and one in us-east-1b,
each sending a steady 50 requests per second through the route of
docs/examples/envoy-bootstrap.yaml; proxyless gRPC clients in us-east-1a
(grpcio and Debian's grpc++) calling grpc-web.

Scenarios, one after the other in the same world:
  apiserver: east's API server and etcd die, its hosts keep serving;
  killed:    east's API server, etcd and hosts die (connections refused);
  frozen:    east's API server and etcd die, its hosts freeze (SIGSTOP:
             connections hang).
After each, east comes back and the script waits for traffic to return to it.

usage: whole_cluster.py WORKDIR RESULT.json [SCENARIO...]
Prints progress to stderr; writes the figures to RESULT.json."""
import concurrent.futures
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
E2E = HERE.parent
ROOT = E2E.parent
for path in (E2E, ROOT / "tools", E2E / "kubernetes", E2E / "conformance"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import yaml  # noqa: E402

from kube_cluster import KubeCluster  # noqa: E402
from peers.envoy import Envoy  # noqa: E402
from peers.grpc_peers import XdsClient, write_bootstrap  # noqa: E402
from peers.util import http_get_json, wait_until  # noqa: E402

ZONES = {"east": "us-east-1a", "west": "us-east-1b"}
REGION = "us-east-1"
HOSTS = {"east": ["10.99.1.1", "10.99.1.2"], "west": ["10.99.2.1", "10.99.2.2"]}
RATE = 50            # requests per second per Envoy
MEASURE = 30.0       # seconds measured after each kill
RETURN_TIMEOUT = 150.0

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def setup_namespace():
    """Loopback up and the hosts' addresses on it; proves nothing routes out."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for addresses in HOSTS.values():
        for address in addresses:
            subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
    probe = subprocess.run(["ip", "route", "get", "1.1.1.1"], capture_output=True, text=True)
    if probe.returncode == 0 or "unreachable" not in probe.stderr:
        raise SystemExit(f"not an isolated namespace: {probe.stdout}{probe.stderr}")


class Host:
    """A host.py process."""

    def __init__(self, workdir, address, name):
        self.address, self.name = address, name
        self.log_path = workdir / f"host-{name}.log"
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "host.py"), self.address, self.name],
                                     stdout=subprocess.PIPE, stderr=open(self.log_path, "ab"),
                                     text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"host {self.name} did not start: {self.log_path.read_text()}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def freeze(self):
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


def service(name, port):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default",
                         "annotations": {"attache.io/failover": "zone-failover"}},
            "spec": {"ports": [{"name": "main", "port": port, "targetPort": port,
                                "protocol": "TCP"}]}}


def endpoint_slice(cluster, service_name, port):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service_name}-{cluster}", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4",
            "ports": [{"name": "main", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [address], "conditions": {"ready": True},
                           "zone": ZONES[cluster]} for address in HOSTS[cluster]]}


def documented_route(cluster_name):
    """The route of docs/examples/envoy-bootstrap.yaml, pointed at cluster_name."""
    boot = yaml.safe_load((ROOT / "docs" / "examples" / "envoy-bootstrap.yaml").read_text())
    route = (boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
             ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]["route"])
    route["cluster"] = cluster_name
    return route


def start_envoy(workdir, xds_port, zone):
    envoy = Envoy(workdir / f"envoy-{zone}", xds_port, "web.default",
                  node_id=f"envoy-{zone}", zone=zone)
    boot = yaml.safe_load(envoy.boot_path.read_text())
    boot["node"]["locality"] = {"region": REGION, "zone": zone}
    routes = (boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
              ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"])
    routes[0]["route"] = documented_route("web.default")
    envoy.boot_path.write_text(yaml.safe_dump(boot, sort_keys=False))
    return envoy.start(timeout=60)


class Load:
    """RATE requests per second through an Envoy, open loop (a hung request
    does not hold back the next). Records (start, end, status, body)."""

    def __init__(self, envoy):
        self.port = envoy.listener_port
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=128)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _one(self):
        start = time.monotonic()
        try:
            with _NO_PROXY.open(f"http://127.0.0.1:{self.port}/", timeout=10) as response:
                status, body = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, body = error.code, ""
        except Exception as error:  # noqa: BLE001: any failure is a failed request
            status, body = 0, type(error).__name__
        with self._lock:
            self.results.append((start, time.monotonic(), status, body))

    def _run(self):
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._pool.submit(self._one)
            next_at += 1.0 / RATE
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)  # pacing, not synchronisation

    def window(self, start, end):
        """Results of the requests started in [start, end)."""
        with self._lock:
            return [r for r in self.results if start <= r[0] < end]

    def stop(self):
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True)


def figures(results, east_names, kill_at):
    failed = [r for r in results if r[2] != 200]
    answered = [r for r in results if r[2] == 200]
    to_east = sum(1 for r in answered if r[3] in east_names)
    statuses = {}
    for r in failed:
        key = f"{r[2]} {r[3][:60]}".strip()
        statuses[key] = statuses.get(key, 0) + 1
    return {
        "failures_by_status": statuses,
        "failure_times_s": sorted(round(r[0] - kill_at, 2) for r in failed)[:40],
        "requests": len(results),
        "failed": len(failed),
        "failed_percent": round(100.0 * len(failed) / max(1, len(results)), 3),
        "last_failure_after_kill_s": round(max((r[0] for r in failed), default=kill_at) - kill_at, 3),
        "to_east_percent": round(100.0 * to_east / max(1, len(answered)), 2),
        "slowest_s": round(max((r[1] - r[0] for r in results), default=0), 3),
    }


class GrpcCalls:
    """A proxyless client's calls, counted by the lines it printed."""

    def __init__(self, client):
        self.client = client

    def lines(self):
        return self.client.snapshot()

    def figures(self, start_index, end_index, east_names):
        lines = self.lines()[start_index:end_index]
        failed = [line for line in lines if line.startswith("ERROR")]
        ok = [line for line in lines if not line.startswith("ERROR")]
        return {"calls": len(lines), "failed": len(failed),
                "failed_percent": round(100.0 * len(failed) / max(1, len(lines)), 3),
                "to_east_percent": round(100.0 * sum(1 for line in ok if line in east_names)
                                         / max(1, len(ok)), 2),
                "errors": sorted(set(failed))[:5]}


def wait_back_to_east(load, east_names, what):
    """Waits until nearly all of a second's requests are answered by east."""
    def back():
        now = time.monotonic()
        recent = [r for r in load.window(now - 1.0, now) if r[2] == 200]
        return len(recent) > RATE // 2 and \
            sum(1 for r in recent if r[3] in east_names) >= 0.95 * len(recent)
    start = time.monotonic()
    wait_until(back, timeout=RETURN_TIMEOUT, interval=0.2, what=what)
    return round(time.monotonic() - start, 1)


def main(argv):
    workdir, result_path = pathlib.Path(argv[1]), pathlib.Path(argv[2])
    scenarios = argv[3:] or ["apiserver", "killed", "frozen"]
    workdir.mkdir(parents=True, exist_ok=True)
    setup_namespace()
    made = []
    clusters, hosts = {}, {}
    result = {"scenarios": {}}
    try:
        for name in ZONES:
            clusters[name] = KubeCluster(workdir / f"kube-{name}", name=name).start()
            made.append(clusters[name])
            clusters[name].apply(service("web", 8080), service("grpc-web", 9090),
                                 endpoint_slice(name, "web", 8080),
                                 endpoint_slice(name, "grpc-web", 9090))
            hosts[name] = [Host(workdir, address, f"{name}-{i}")
                           for i, address in enumerate(HOSTS[name])]
        log("clusters up:", {n: c.server for n, c in clusters.items()})

        sys.path.insert(0, str(E2E))
        import importlib.util
        spec = importlib.util.spec_from_file_location("attache_e2e_conftest_wc", E2E / "conftest.py")
        conftest = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(conftest)
        config = {"sources": [
            {"name": name, "type": "kubernetes", "kubeconfig": str(cluster.kubeconfig),
             "locality": {"region": REGION}} for name, cluster in clusters.items()]}
        (workdir / "attache").mkdir()
        attache = conftest.Attache(workdir / "attache", {}, config).start()
        made.append(attache)

        envoys = {zone: start_envoy(workdir, attache.xds_port, zone) for zone in ZONES.values()}
        made.extend(envoys.values())
        for envoy in envoys.values():
            wait_until(lambda e=envoy: len(e.cluster_hosts("web.default") or {}) == 4,
                       timeout=60, what="Envoy holds the four web hosts")
        loads = {zone: Load(envoy) for zone, envoy in envoys.items()}

        grpc = {}
        for kind in ("python", "cpp"):
            client_dir = workdir / f"grpc-{kind}"
            client_dir.mkdir()
            path = write_bootstrap(client_dir / "bootstrap.json", attache.xds_port,
                                   f"grpc-{kind}", zone=ZONES["east"])
            bootstrap = json.loads(pathlib.Path(path).read_text())
            bootstrap["node"]["locality"] = {"region": REGION, "zone": ZONES["east"]}
            pathlib.Path(path).write_text(json.dumps(bootstrap))
            client = XdsClient(kind, path, "xds:///grpc-web.default", client_dir, count=0,
                               interval_ms=20, max_seconds=3600)
            made.append(client)
            grpc[kind] = GrpcCalls(client)
        east_names = {host.name for host in hosts["east"]}
        for kind, calls in grpc.items():
            wait_until(lambda c=calls: sum(1 for line in c.lines()[-20:] if line in east_names) >= 20,
                       timeout=60, what=f"{kind} gRPC client calling east")
        east_envoy_load = loads[ZONES["east"]]
        wait_back_to_east(east_envoy_load, east_names, "warm-up: Envoy in us-east-1a uses east")

        for scenario in scenarios:
            log("scenario", scenario)
            marks = {kind: len(calls.lines()) for kind, calls in grpc.items()}
            kill_at = time.monotonic()
            clusters["east"].kill()  # API server and etcd
            if scenario == "killed":
                for host in hosts["east"]:
                    host.kill()
            elif scenario == "frozen":
                for host in hosts["east"]:
                    host.freeze()
            # Every request started in the window has ended 11 s later (timeout 10 s).
            time.sleep(MEASURE + 11)  # the measured window itself, not synchronisation
            entry = {
                "envoy_" + zone: figures(load.window(kill_at, kill_at + MEASURE), east_names, kill_at)
                for zone, load in loads.items()}
            ends = {kind: len(calls.lines()) for kind, calls in grpc.items()}
            for kind, calls in grpc.items():
                entry["grpc_" + kind] = calls.figures(marks[kind], ends[kind], east_names)
            entry["envoy_stats"] = {
                zone: {name.split("web.default.")[-1]: value
                       for name, value in envoy.stats("cluster.web.default.").items()
                       if any(k in name for k in ("retry", "timeout", "outlier", "ejections",
                                                  "overflow", "cx_connect_fail", "rq_5xx"))}
                for zone, envoy in envoys.items()}
            entry["sources_during"] = {
                source["name"]: source["state"]
                for source in http_get_json(f"{attache.admin_url}/debug/sources")}
            log(scenario, json.dumps(entry))

            # East comes back: hosts first (as a cluster's workloads would), then its API.
            if scenario == "killed":
                for host in hosts["east"]:
                    host.start()
            elif scenario == "frozen":
                for host in hosts["east"]:
                    host.thaw()
            clusters["east"].start()
            back_at = time.monotonic()
            entry["returned_to_east_after_s"] = wait_back_to_east(
                east_envoy_load, east_names, f"{scenario}: traffic back to east")
            entry["failed_while_returning"] = figures(
                east_envoy_load.window(back_at, time.monotonic()), east_names, back_at)["failed"]
            result["scenarios"][scenario] = entry
            result_path.write_text(json.dumps(result, indent=2))
        for load in loads.values():
            load.stop()
        result["nacks"] = {zone: envoy.stat("cluster_manager.cds.update_rejected")
                           for zone, envoy in envoys.items()}
        result["complete"] = True
        result_path.write_text(json.dumps(result, indent=2))
        return 0
    finally:
        for thing in reversed(made):
            try:
                (thing.kill if isinstance(thing, KubeCluster) else thing.stop)()
            except Exception as error:  # noqa: BLE001: clean up the rest
                log("cleanup:", error)
        for group in hosts.values():
            for host in group:
                host.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
