#!/usr/bin/env python3
"""attache and go-control-plane side by side, in one run, on one workload.

    bash bench/run.sh                # every scenario (about 15 minutes)
    bash bench/run.sh --smoke        # seconds: both servers serve every client
    bash bench/run.sh --scenarios sotw,idle

For each scenario the same host files are generated once; each server in
turn serves a fresh copy of them, pinned to CPU 0, while xdsload (pinned to
CPU 1) connects the simulated Envoys, applies the churn and measures. The
table compares the figures with ratios attache / go-control-plane.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("ATTACHE_CACHE", os.path.expanduser("~/.cache/attache"))
BIN = os.path.join(CACHE, "bin")

# name: (workload, load generator arguments)
SCENARIOS = {
    # (a), (c), (d): 1,000 services x 3 clusters x 10 endpoints, 2,000 SotW
    # clients with 100 clusters each, churn at 100 and 1,000 changes/s, then
    # every client reconnects at once.
    "sotw": (dict(services=1000, clusters=3, endpoints=10),
             dict(clients=2000, subscribe=100, churn="100,1000",
                  churn_seconds=10, storm=True, timeout="120s")),
    # (b), (c), (d) over delta xDS.
    "delta": (dict(services=1000, clusters=3, endpoints=10),
              dict(clients=2000, subscribe=100, churn="100,1000",
                   churn_seconds=10, storm=True, delta=True, timeout="120s")),
    # (e): memory held by 10,000 connected, idle clients.
    "idle": (dict(services=1000, clusters=3, endpoints=10),
             dict(clients=10000, subscribe=100, timeout="300s")),
}
SMOKE = {
    "smoke-sotw": (dict(services=50, clusters=3, endpoints=4),
                   dict(clients=40, subscribe=10, churn="50",
                        churn_seconds=1, storm=True, verify=True,
                        timeout="30s")),
    "smoke-delta": (dict(services=50, clusters=3, endpoints=4),
                    dict(clients=40, subscribe=10, churn="50",
                         churn_seconds=1, storm=True, delta=True,
                         verify=True, timeout="30s")),
}

# Both servers coalesce file events alike: a change is read once the folder
# has been quiet for 20 ms, and at most 50 ms after the first event (attache's
# file source does this; catalog.debounce 0 adds nothing after it).
ATTACHE_CONFIG = """\
xds: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0}
catalog: {debounce: 0ms, max_delay: 0ms}
sources: [{name: hosts, type: file, path: %s}]
"""
# -ads=false: in ADS mode the snapshot cache never answers a SotW EDS request
# for a subset of the clusters (go-control-plane issue #63), and each
# simulated client asks for 100 of them.
NAMES = {"attache": "attache", "gcp": "go-control-plane"}
GCP_ARGS = ["-debounce", "20ms", "-max-delay", "50ms", "-ads=false"]


def log(message):
    print(f"bench: {message}", file=sys.stderr, flush=True)


def start_server(kind, attache, hosts, work):
    ports = os.path.join(work, f"{kind}-ports.json")
    if kind == "attache":
        config = os.path.join(work, "attache.yaml")
        with open(config, "w") as f:
            f.write(ATTACHE_CONFIG % hosts)
        command = [attache, "serve", "-c", config, "--write-ports", ports]
    else:
        command = [os.path.join(BIN, "gcpserver"), "-listen", "127.0.0.1:0",
                   "-dir", hosts, "-port-file", ports] + GCP_ARGS
    stderr = open(os.path.join(work, f"{kind}.log"), "w")
    server = subprocess.Popen(["taskset", "-c", "0"] + command,
                              stdout=stderr, stderr=stderr)
    deadline = time.time() + 120
    while not os.path.exists(ports):
        if server.poll() is not None or time.time() > deadline:
            raise SystemExit(f"{kind} did not start; see {stderr.name}")
        time.sleep(0.05)
    with open(ports) as f:
        return server, json.load(f)["xds"]


def run_load(target, pid, hosts, load):
    command = ["taskset", "-c", "1", os.path.join(BIN, "xdsload"), "run",
               "-dir", hosts, "-target", target, "-pid", str(pid)]
    for key, value in load.items():
        flag = "-" + key.replace("_", "-")
        if value is True:
            command.append(flag)
        else:
            command += [flag, str(value)]
    out = subprocess.run(command, stdout=subprocess.PIPE, check=True, text=True)
    return json.loads(out.stdout)


def run_scenario(name, workload, load, attache, servers, keep):
    work = tempfile.mkdtemp(prefix=f"attache-bench-{name}-")
    pristine = os.path.join(work, "pristine")
    subprocess.run([os.path.join(BIN, "xdsload"), "gen", "-dir", pristine] +
                   [f"-{k}={v}" for k, v in workload.items()], check=True)
    results = {}
    for kind in servers:
        hosts = os.path.join(work, f"hosts-{kind}")
        shutil.copytree(pristine, hosts)
        log(f"{name}: {kind} ...")
        server, port = start_server(kind, attache, hosts, work)
        try:
            results[kind] = run_load(f"127.0.0.1:{port}", server.pid, hosts,
                                     load)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return results


def figures(report):
    """The table's rows for one server's report, as (label, value, unit)."""
    rows = []
    phases = {p["name"]: p for p in report["phases"]}
    initial = phases["initial"]
    n = report["clients"]
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
    for kind, report in results.items():
        lines.append(f"- {NAMES.get(kind, kind)}: {report['clients']} clients "
                     f"({'delta' if report['delta'] else 'SotW'}), "
                     f"{report['subscribe']} clusters each, "
                     f"{report['services']} services; "
                     f"served every client: "
                     f"{'yes' if served_everyone(report) else 'NO'}")
    lines.append("")
    kinds = list(results)
    columns = {k: figures(r) for k, r in results.items()}
    compare = len(kinds) == 2
    header = "| figure | " + ("attache / go-control-plane | " if compare else "")
    header += " | ".join(NAMES.get(k, k) for k in kinds) + " |"
    lines += [header, "|---" * (len(kinds) + 1 + compare) + "|"]
    for i, (label, _, unit) in enumerate(columns[kinds[0]]):
        values = [columns[k][i][1] for k in kinds]
        cells = [f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
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
        workload, load = catalog[name]
        results = run_scenario(name, workload, load, args.attache, servers,
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
