#!/usr/bin/env python3
"""attache and go-control-plane side by side, in one run, on one workload.

    bash bench/run.sh                # every scenario (about 17 minutes)
    bash bench/run.sh --smoke        # seconds: both servers serve every client
    bash bench/run.sh --scenarios sotw,idle

For each scenario the same host files are generated once; each server in
turn serves a fresh copy of them, pinned to CPU 0, while xdsload (pinned to
CPU 1) connects the simulated Envoys, applies the churn and measures. The
table compares the figures with ratios attache / go-control-plane.

The kube scenario writes the workload into a real kube-apiserver (etcd and
kube-apiserver on 127.0.0.1, from tools/kube_cluster.py) as Services and
EndpointSlices, once, before either server starts; each server then reads
them from it, and the clients are timed from the server's launch.
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("ATTACHE_CACHE", os.path.expanduser("~/.cache/attache"))
BIN = os.path.join(CACHE, "bin")
TOOLS = os.path.join(ROOT, "tools")

# name: (source, workload, load generator arguments). The source is "files"
# (a folder of host files) or "kube" (a kube-apiserver holding the workload
# as Services and EndpointSlices in namespace KUBE_NAMESPACE).
SCENARIOS = {
    # (a), (c), (d): 1,000 services x 3 clusters x 10 endpoints, 2,000 SotW
    # clients with 100 clusters each, churn at 100 and 1,000 changes/s, then
    # every client reconnects at once.
    "sotw": ("files", dict(services=1000, clusters=3, endpoints=10),
             dict(clients=2000, subscribe=100, churn="100,1000",
                  churn_seconds=10, storm=True, timeout="120s")),
    # (b), (c), (d) over delta xDS.
    "delta": ("files", dict(services=1000, clusters=3, endpoints=10),
              dict(clients=2000, subscribe=100, churn="100,1000",
                   churn_seconds=10, storm=True, delta=True, timeout="120s")),
    # (e): memory held by 10,000 connected, idle clients.
    "idle": ("files", dict(services=1000, clusters=3, endpoints=10),
             dict(clients=10000, subscribe=100, timeout="300s")),
    # (f): initial ingestion of 10,000 Services and 30,000 EndpointSlices
    # (one per service and "cluster", 10 ready endpoints each) from a
    # kube-apiserver, until 500 SotW clients with 100 clusters each hold
    # them all.
    "kube": ("kube", dict(services=10000, clusters=3, endpoints=10,
                          service_port=True),
             dict(clients=500, subscribe=100, timeout="600s")),
}
SMOKE = {
    "smoke-sotw": ("files", dict(services=50, clusters=3, endpoints=4),
                   dict(clients=40, subscribe=10, churn="50",
                        churn_seconds=1, storm=True, verify=True,
                        timeout="30s")),
    "smoke-delta": ("files", dict(services=50, clusters=3, endpoints=4),
                    dict(clients=40, subscribe=10, churn="50",
                         churn_seconds=1, storm=True, delta=True,
                         verify=True, timeout="30s")),
    "smoke-kube": ("kube", dict(services=100, clusters=3, endpoints=10,
                                service_port=True),
                   dict(clients=20, subscribe=10, verify=True,
                        timeout="30s")),
}
KUBE_NAMESPACE = "bench"

# Both servers coalesce file events alike: a change is read once the folder
# has been quiet for 20 ms, and at most 50 ms after the first event (attache's
# file source does this; catalog.debounce 0 adds nothing after it).
ATTACHE_CONFIG = """\
xds: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0}
catalog: {debounce: 0ms, max_delay: 0ms}
sources: [{name: hosts, type: file, path: %s}]
"""
ATTACHE_KUBE_CONFIG = """\
xds: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0}
catalog: {debounce: 0ms, max_delay: 0ms}
sources: [{name: bench, type: kubernetes, kubeconfig: %s, namespaces: [%s]}]
"""
# -ads=false: in ADS mode the snapshot cache never answers a SotW EDS request
# for a subset of the clusters (go-control-plane issue #63), and each
# simulated client asks for 100 of them.
NAMES = {"attache": "attache", "gcp": "go-control-plane"}
GCP_ARGS = ["-debounce", "20ms", "-max-delay", "50ms", "-ads=false"]


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def start_server(kind, attache, hosts, work, kubeconfig=None):
    """Starts a server on CPU 0 and waits for its port file. It serves the
    host files in hosts, or with kubeconfig the namespace KUBE_NAMESPACE of
    that cluster. Returns (process, xDS port, launch time in Unix ns)."""
    ports = os.path.join(work, f"{kind}-ports.json")
    if kind == "attache":
        config = os.path.join(work, "attache.yaml")
        with open(config, "w") as f:
            if kubeconfig:
                f.write(ATTACHE_KUBE_CONFIG % (kubeconfig, KUBE_NAMESPACE))
            else:
                f.write(ATTACHE_CONFIG % hosts)
        command = [attache, "serve", "-c", config, "--write-ports", ports]
    else:
        source = (["-kubeconfig", kubeconfig, "-namespace", KUBE_NAMESPACE]
                  if kubeconfig else ["-dir", hosts])
        command = [os.path.join(BIN, "gcpserver"), "-listen", "127.0.0.1:0",
                   "-port-file", ports] + source + GCP_ARGS
    stderr = open(os.path.join(work, f"{kind}.log"), "w")
    launched = time.time_ns()
    server = subprocess.Popen(["taskset", "-c", "0"] + command,
                              stdout=stderr, stderr=stderr)
    deadline = time.time() + (600 if kubeconfig else 120)
    while not os.path.exists(ports):
        if server.poll() is not None or time.time() > deadline:
            server.kill()
            server.wait()
            raise SystemExit(f"{kind} did not start; see {stderr.name}")
        time.sleep(0.002)
    with open(ports) as f:
        return server, json.load(f)["xds"], launched


def stop_server(server):
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def gen_args(workload):
    return [f"-{k.replace('_', '-')}=" + ("true" if v is True else str(v))
            for k, v in workload.items()]


def load_command(hosts, load):
    command = ["taskset", "-c", "1", os.path.join(BIN, "xdsload"), "run",
               "-dir", hosts]
    for key, value in load.items():
        flag = "-" + key.replace("_", "-")
        if value is True:
            command.append(flag)
        else:
            command += [flag, str(value)]
    return command


def run_load(target, pid, hosts, load):
    command = load_command(hosts, load) + ["-target", target, "-pid", str(pid)]
    out = subprocess.run(command, stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(out.stdout)


def run_load_from_launch(kind, attache, hosts, load, work, kubeconfig):
    """Sets the load generator up (it reads the workload), then launches the
    server; the clients connect as soon as the server listens, and the
    initial phase is timed from the launch. Returns the report."""
    command = load_command(hosts, load) + [
        "-name-suffix", "." + KUBE_NAMESPACE, "-await-server"]
    generator = subprocess.Popen(command, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
    server = None
    try:
        if generator.stdout.readline().strip() != "ready":
            raise SystemExit("xdsload did not get ready")
        server, port, launched = start_server(kind, attache, None, work,
                                              kubeconfig=kubeconfig)
        listening = (time.time_ns() - launched) / 1e9
        generator.stdin.write(f"{server.pid} 127.0.0.1:{port} {launched}\n")
        generator.stdin.close()
        report = json.loads(generator.stdout.read())
        if generator.wait() != 0:
            raise SystemExit(f"xdsload failed ({generator.returncode})")
        report["listening_s"] = listening
        return report
    finally:
        if generator.poll() is None:
            generator.kill()
            generator.wait()
        if server is not None:
            stop_server(server)


def run_scenario(name, workload, load, attache, servers, keep):
    work = tempfile.mkdtemp(prefix=f"attache-bench-{name}-")
    pristine = os.path.join(work, "pristine")
    subprocess.run([os.path.join(BIN, "xdsload"), "gen", "-dir", pristine] +
                   gen_args(workload), check=True)
    results = {}
    for kind in servers:
        hosts = os.path.join(work, f"hosts-{kind}")
        shutil.copytree(pristine, hosts)
        log(f"{name}: {kind} ...")
        server, port, _ = start_server(kind, attache, hosts, work)
        try:
            results[kind] = run_load(f"127.0.0.1:{port}", server.pid, hosts,
                                     load)
        finally:
            stop_server(server)
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return results


def run_kube_scenario(name, workload, load, attache, servers, keep):
    """Scenario (f): one etcd + kube-apiserver on 127.0.0.1, loaded once with
    the workload before either server starts; each server in turn is
    launched against it with the clients started as soon as it listens, and
    the initial phase is timed from the launch."""
    sys.path.insert(0, TOOLS)
    from kube_cluster import KubeCluster, ensure_binaries
    work = tempfile.mkdtemp(prefix=f"attache-bench-{name}-")
    pristine = os.path.join(work, "pristine")
    subprocess.run([os.path.join(BIN, "xdsload"), "gen", "-dir", pristine] +
                   gen_args(workload), check=True)
    # tools/build.sh builds etcd and kube-apiserver when missing (instant
    # when they are up to date); its messages go to stderr.
    subprocess.run([os.path.join(TOOLS, "build.sh")], stdout=sys.stderr,
                   check=True)
    bin_dir = ensure_binaries(pathlib.Path(BIN))
    results = {}
    with KubeCluster(os.path.join(work, "kube"), bin_dir=bin_dir) as kube:
        log(f"{name}: kube-apiserver ready in {kube.startup_seconds:.1f} s "
            f"at {kube.server}; loading ...")
        out = subprocess.run(
            [os.path.join(BIN, "xdsload"), "kubeload", "-dir", pristine,
             "-server", kube.server, "-token", kube.token,
             "-ca-file", str(kube.ca_file), "-namespace", KUBE_NAMESPACE],
            stdout=subprocess.PIPE, check=True, text=True)
        loaded = json.loads(out.stdout)
        loaded["apiserver_start_s"] = kube.startup_seconds
        # From here etcd and the API server share CPU 1 with the load
        # generator: CPU 0 stays the xDS server's alone, as in the other
        # scenarios (-a: every thread).
        for proc in (kube.etcd, kube.apiserver):
            subprocess.run(["taskset", "-a", "-p", "-c", "1", str(proc.pid)],
                           stdout=subprocess.DEVNULL, check=True)
        for kind in servers:
            log(f"{name}: {kind} ...")
            report = run_load_from_launch(kind, attache, pristine, load, work,
                                          str(kube.kubeconfig))
            report["kube_load"] = loaded
            results[kind] = report
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return results


def figures(report):
    """The table's rows for one server's report, as (label, value, unit)."""
    rows = []
    phases = {p["name"]: p for p in report["phases"]}
    initial = phases["initial"]
    n = report["clients"]
    if report.get("timed_from_launch"):
        # Scenario (f): from the server's launch, ingestion included. The
        # RSS before the clients is not comparable (attache listens after
        # its first lists, the baseline before), so no per-client RSS.
        rows.append(("server launch to all clients holding every endpoint",
                     initial["seconds"], "s"))
        rows.append(("server CPU, launch to all clients served",
                     initial["server_cpu_s"], "s"))
        rows.append(("pushes (responses) to the clients",
                     initial["responses"], ""))
        rows.append(("bytes sent", initial["bytes"] / 1e6, "MB"))
        rows.append(("peak RSS", initial["server"]["peak_rss_kib"] / 1024,
                     "MiB"))
        return rows
    rows.append(("initial config, all clients ACKed", initial["seconds"], "s"))
    rows.append(("server CPU, initial", initial["server_cpu_s"], "s"))
    if initial["responses"]:
        rows.append(("server CPU per 1,000 pushes, initial",
                     1000 * initial["server_cpu_s"] / initial["responses"], "s"))
    grown = initial["server"]["rss_kib"] - report["server_before_clients"]["rss_kib"]
    rows.append(("RSS per connected client", grown / n, "KiB"))
    for p in report["phases"]:
        if not p["name"].startswith("churn"):
            continue
        rate = p["name"].split()[1]
        rows.append((f"change to every client p50, {rate}", p["p50_ms"], "ms"))
        rows.append((f"change to every client p99, {rate}", p["p99_ms"], "ms"))
        rows.append((f"change to every client max, {rate}", p["max_ms"], "ms"))
        rows.append((f"server CPU, churn {rate}", p["server_cpu_s"], "s"))
        if p["responses"]:
            rows.append((f"server CPU per 1,000 pushes, churn {rate}",
                         1000 * p["server_cpu_s"] / p["responses"], "s"))
        rows.append((f"bytes sent, churn {rate}", p["bytes"] / 1e6, "MB"))
    if "reconnect storm" in phases:
        p = phases["reconnect storm"]
        rows.append(("reconnect storm, all clients ACKed", p["seconds"], "s"))
        rows.append(("server CPU, reconnect storm", p["server_cpu_s"], "s"))
    rows.append(("bytes sent, initial", initial["bytes"] / 1e6, "MB"))
    last = report["phases"][-1]["server"]
    rows.append(("peak RSS", last["peak_rss_kib"] / 1024, "MiB"))
    return rows


def served_everyone(report):
    return (all(p["converged_clients"] == report["clients"]
                for p in report["phases"])
            and all(p.get("samples", 0) + p.get("cancelled_samples", 0)
                    == p.get("expected_samples", 0)
                    for p in report["phases"])
            and report["verify_mismatches"] == 0)


def table(name, results):
    lines = [f"### {name}", ""]
    loaded = next((r["kube_load"] for r in results.values()
                   if "kube_load" in r), None)
    if loaded:
        lines.append(f"- kube-apiserver: {loaded['services']} Services and "
                     f"{loaded['endpoint_slices']} EndpointSlices "
                     f"({loaded['endpoints']} endpoints) in namespace "
                     f"{loaded['namespace']}, written in "
                     f"{loaded['seconds']:.1f} s "
                     f"({loaded['objects_per_s']:.0f} objects/s) before "
                     f"either server started")
    for kind, report in results.items():
        listening = (f"; xDS port open {report['listening_s']:.2f} s after "
                     f"launch" if "listening_s" in report else "")
        lines.append(f"- {NAMES.get(kind, kind)}: {report['clients']} clients "
                     f"({'delta' if report['delta'] else 'SotW'}), "
                     f"{report['subscribe']} clusters each, "
                     f"{report['services']} services; "
                     f"served every client: "
                     f"{'yes' if served_everyone(report) else 'NO'}"
                     f"{listening}")
    lines.append("")
    kinds = list(results)
    columns = {k: figures(r) for k, r in results.items()}
    compare = len(kinds) == 2
    header = "| figure | " + ("attache / go-control-plane | " if compare else "")
    header += " | ".join(NAMES.get(k, k) for k in kinds) + " |"
    lines += [header, "|---" * (len(kinds) + 1 + compare) + "|"]
    for i, (label, _, unit) in enumerate(columns[kinds[0]]):
        values = [columns[k][i][1] for k in kinds]
        cells = [(f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}").strip()
                 for v in values]
        if compare:
            cells.insert(0, f"**{values[0] / values[1]:.2f}**"
                         if values[1] else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds; exits non-zero unless both "
                             "servers served every client")
    parser.add_argument("--scenarios", help="comma-separated subset")
    parser.add_argument("--servers", default="attache,gcp")
    parser.add_argument("--attache", default=os.path.join(
        ROOT, os.environ.get("ATTACHE_BUILD_DIR", "build"), "attache"))
    parser.add_argument("--json", help="also write every report here")
    parser.add_argument("--from-json", help="print the tables of an earlier "
                        "--json file instead of running")
    for key, what in (("services", "services in the workload"),
                      ("clients", "simulated Envoys"),
                      ("subscribe", "clusters each client asks for")):
        parser.add_argument(f"--{key}", type=int,
                            help=f"{what}, instead of the scenarios' own")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work folders (logs, host files)")
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            for name, results in json.load(f).items():
                print(table(name, results))
        return 0
    catalog = SMOKE if args.smoke else SCENARIOS
    names = args.scenarios.split(",") if args.scenarios else list(catalog)
    servers = args.servers.split(",")
    everything, ok = {}, True
    for name in names:
        source, workload, load = catalog[name]
        workload, load = dict(workload), dict(load)
        if args.services:
            workload["services"] = args.services
        for key in ("clients", "subscribe"):
            if getattr(args, key):
                load[key] = getattr(args, key)
        runner = run_kube_scenario if source == "kube" else run_scenario
        results = runner(name, workload, load, args.attache, servers,
                         args.keep)
        everything[name] = results
        print(table(name, results), flush=True)
        ok = ok and all(served_everyone(r) for r in results.values())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(everything, f, indent=2)
    if not ok:
        log("a server did not serve every client every change")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
