"""Translation cost of views: 1,000 services x 30 endpoints in 3 zones, SotW
clients in K distinct places, then one host-file edit that changes every
endpoint; prints attache's own "translated and published in" log line.

    python bench/views_translation.py build/attache zone-failover 4

A seed for the benchmark of issue 5, not run by CI."""
import os, re, subprocess, sys, time, tempfile
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "e2e", "conformance")); sys.path.insert(0, os.path.join(ROOT, "e2e"))
from ads_client import XdsStream, envoy_node, CLUSTER, ENDPOINT, names

binary, policy, places = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = tempfile.mkdtemp()
def hosts(port_base):
    out = ["services:"]
    for s in range(1000):
        out.append(f"  svc{s}:\n    endpoints:")
        for e in range(30):
            out.append(f"      - {{address: 10.{s//250}.{s%250}.{e+1}, port: {port_base+e}, region: r1, zone: z{e%3}}}")
    return "\n".join(out) + "\n"
open(f"{d}/hosts.yaml", "w").write(hosts(8000))
cfg = f"xds: {{listen: 127.0.0.1:0}}\nadmin: {{listen: 127.0.0.1:0}}\ndefaults: {{failover: {policy}}}\nsources: [{{name: h, type: file, path: hosts.yaml}}]\n"
open(f"{d}/a.yaml", "w").write(cfg)
log = open(f"{d}/log", "w")
p = subprocess.Popen([binary, "serve", "-c", f"{d}/a.yaml", "--log-level", "debug", "--write-ports", f"{d}/ports"], stderr=log, stdout=log)
while not os.path.exists(f"{d}/ports"): time.sleep(0.05)
import json
ports = json.load(open(f"{d}/ports"))
addr = f"127.0.0.1:{ports['xds']}"
streams = []
t0 = time.time()
for i in range(places):
    zone = f"z{i}" if i < 3 else f"elsewhere{i}"
    s = XdsStream(addr, node=envoy_node(f"c{i}", zone=zone))
    s.send(CLUSTER); r = s.recv(CLUSTER, timeout=30); s.ack(r)
    s.send(ENDPOINT, resource_names=sorted(names(r))); e = s.recv(ENDPOINT, timeout=30); s.ack(e)
    streams.append(s)
print(f"{places} clients connected and got CDS+EDS in {time.time()-t0:.2f}s")
open(f"{d}/hosts.yaml.new", "w").write(hosts(9000)); os.rename(f"{d}/hosts.yaml.new", f"{d}/hosts.yaml")
for s in streams:
    e = s.recv(ENDPOINT, timeout=60); 
time.sleep(0.5)
p.terminate(); p.wait()
for line in open(f"{d}/log"):
    if "translated" in line: print(line.strip()[-120:])
