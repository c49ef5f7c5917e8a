"""Helpers for the Kubernetes-source end-to-end tests: Kubernetes objects,
attache with kubernetes sources, a recording ADS stream, etcd helpers.

Addresses in EndpointSlices are documentation addresses (RFC 5737) used as
data only: no test ever connects to them.
"""
import base64
import importlib.util
import json
import pathlib
import socket
import threading
import time
import urllib.request

from ads_client import CLUSTER, ENDPOINT, NoResponse, StreamClosed, XdsStream, by_name
from peers.util import http_get, http_get_json, loopback_listener, wait_until  # noqa: F401

HERE = pathlib.Path(__file__).resolve().parent

# e2e/conftest.py is loaded by pytest as a conftest, not as an importable
# module: load its Attache class from the file itself (as conformance/ does).
_spec = importlib.util.spec_from_file_location("attache_e2e_conftest_k8s", HERE.parent / "conftest.py")
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
Attache = _e2e.Attache

# envoy.config.core.v3.HealthStatus
UNKNOWN, HEALTHY, UNHEALTHY, DRAINING = 0, 1, 2, 3
HEALTH_NAMES = {0: "UNKNOWN", 1: "HEALTHY", 2: "UNHEALTHY", 3: "DRAINING"}
DOC_NETS = ("192.0.2.", "198.51.100.", "203.0.113.")

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- Kubernetes objects --------------------------------------------------------
def service(name, namespace="default", ports=(("http", 80, 8080),), annotations=None,
            external_name=None):
    """A v1 Service; ports are (name, port, targetPort) triples."""
    spec = {"ports": [dict({"port": port, "targetPort": target, "protocol": "TCP"},
                           **({"name": pname} if pname else {}))
                      for pname, port, target in ports]}
    if external_name:
        spec = {"type": "ExternalName", "externalName": external_name}
    metadata = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def ep(address, zone=None, ready=True, serving=None, terminating=None, node=None):
    """One EndpointSlice endpoint (documentation addresses only)."""
    assert address.startswith(DOC_NETS), f"{address} is not a documentation address"
    conditions = {"ready": ready}
    if serving is not None:
        conditions["serving"] = serving
    if terminating is not None:
        conditions["terminating"] = terminating
    entry = {"addresses": [address], "conditions": conditions}
    if zone:
        entry["zone"] = zone
    if node:
        entry["nodeName"] = node
    return entry


def endpoint_slice(name, service_name, endpoints, ports=(("http", 8080),), namespace="default"):
    """A discovery.k8s.io/v1 EndpointSlice of service_name; ports are (name, port)."""
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": service_name,
                                "endpointslice.kubernetes.io/managed-by": "attache-e2e"}},
        "addressType": "IPv4",
        "ports": [dict({"port": port, "protocol": "TCP"}, **({"name": pname} if pname is not None else {}))
                  for pname, port in ports],
        "endpoints": list(endpoints),
    }


# -- attache -------------------------------------------------------------------
def kube_source(name, cluster, region=None, **fields):
    source = {"name": name, "type": "kubernetes", "kubeconfig": str(cluster.kubeconfig)}
    if region:
        source["locality"] = {"region": region}
    source.update(fields)
    return source


def start_attache(workdir, sources, catalog=None, **extra):
    """Starts attache with only the given (kubernetes) sources."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True)
    # Endpoint addresses here are data only (not loopback, never inside a
    # namespace of the test's own): no outlier detection, so an Envoy that
    # holds them has nothing that could ever act on them (shared/test-peers.md).
    config = {"sources": list(sources),
              "defaults": {"outlier_detection": {"enabled": False}}}
    if catalog:
        config["catalog"] = dict({"debounce": "10ms", "max_delay": "100ms"}, **catalog)
    config.update(extra)
    return Attache(workdir, {}, config).start()


def debug_sources(attache):
    """{source name: entry of /debug/sources}."""
    return {entry["name"]: entry for entry in http_get_json(attache.admin_url + "/debug/sources")}


def readyz(attache):
    return http_get(attache.admin_url + "/readyz")[0]


def log_count(attache, text):
    return attache.log().count(text)


# -- ClusterLoadAssignments ------------------------------------------------------
def cla_rows(cla):
    """Sorted (region, zone, sub_zone, address, port, health name) of a CLA."""
    rows = []
    for group in cla.endpoints:
        for lb in group.lb_endpoints:
            socket = lb.endpoint.address.socket_address
            rows.append((group.locality.region, group.locality.zone, group.locality.sub_zone,
                         socket.address, socket.port_value, HEALTH_NAMES[lb.health_status]))
    return sorted(rows)


def cla_localities(cla):
    """Sorted (region, zone, sub_zone) of the CLA's LocalityLbEndpoints (duplicates kept)."""
    return sorted((g.locality.region, g.locality.zone, g.locality.sub_zone) for g in cla.endpoints)


def dump_rows(endpoint_config):
    """cla_rows for an Envoy /config_dump?include_eds endpoint_config (JSON)."""
    rows = []
    for group in endpoint_config.get("endpoints", []):
        locality = group.get("locality", {})
        for lb in group.get("lb_endpoints", []):
            socket = lb["endpoint"]["address"]["socket_address"]
            rows.append((locality.get("region", ""), locality.get("zone", ""),
                         locality.get("sub_zone", ""), socket["address"], socket["port_value"],
                         lb.get("health_status", "UNKNOWN")))
    return sorted(rows)


class AdsRecorder:
    """A raw ADS stream (official schemas) that subscribes to every Cluster and
    to the ClusterLoadAssignments of eds_names, ACKs everything in a background
    thread, and records every response with its arrival time."""

    def __init__(self, address, eds_names):
        self.eds_names = list(eds_names)
        self.stream = XdsStream(address)
        self.lock = threading.Lock()
        self.cds = []   # (time, version, {name: Cluster})
        self.eds = []   # (time, version, {name: ClusterLoadAssignment})
        self.closed = None
        self._stop = threading.Event()
        self.stream.send(CLUSTER, [])
        self.stream.send(ENDPOINT, self.eds_names)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                response = self.stream.recv(timeout=0.2)
            except NoResponse:
                continue
            except StreamClosed as closed:
                self.closed = closed
                return
            entry = (time.monotonic(), response.version_info, by_name(response))
            with self.lock:
                (self.cds if response.type_url == CLUSTER else self.eds).append(entry)
            self.stream.ack(response)

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.stream.close()

    # -- reading ----------------------------------------------------------------
    def clusters(self):
        """{name: Cluster} of the latest CDS response (None before the first)."""
        with self.lock:
            return dict(self.cds[-1][2]) if self.cds else None

    def cla(self, name):
        """(version, ClusterLoadAssignment) of the latest EDS response carrying name."""
        with self.lock:
            for _, version, found in reversed(self.eds):
                if name in found:
                    return version, found[name]
        return None, None

    def served_rows(self, name):
        """cla_rows of name as a client holds it now: None once the latest CDS
        response no longer has the cluster (attache withdraws a cluster through
        CDS; no EDS response follows for it)."""
        clusters = self.clusters()
        _, cla = self.cla(name)
        if not clusters or name not in clusters or cla is None:
            return None
        return cla_rows(cla)

    def cla_history(self, name):
        """[(time, version, ClusterLoadAssignment)] of every EDS response carrying name."""
        with self.lock:
            return [(t, v, found[name]) for t, v, found in self.eds if name in found]

    def wait_rows(self, name, expected, timeout=20):
        """Waits until the latest CLA of name has exactly the rows expected."""
        expected = sorted(expected)

        def check():
            if self.closed:
                raise AssertionError(f"ADS stream closed: {self.closed}")
            _, cla = self.cla(name)
            return cla is not None and cla_rows(cla) == expected

        try:
            wait_until(check, timeout=timeout, interval=0.05, what=f"CLA {name} = {expected}")
        except AssertionError:
            _, cla = self.cla(name)
            raise AssertionError(f"CLA {name}: expected {expected}\n"
                                 f"got {cla_rows(cla) if cla is not None else None}") from None
        return self.cla(name)

    def wait_clusters(self, predicate, timeout=20, what="clusters"):
        return wait_until(lambda: (self.clusters() is not None and predicate(self.clusters())
                                   and self.clusters()), timeout=timeout, interval=0.05, what=what)


# -- etcd (its HTTP/JSON gateway, no etcdctl) --------------------------------------
def etcd_post(cluster, path, body):
    request = urllib.request.Request(cluster.etcd_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with _NO_PROXY.open(request, timeout=10) as response:
        return json.loads(response.read())


def etcd_revision(cluster):
    """The current revision of the cluster's etcd (header.revision of a range read)."""
    key = base64.b64encode(b"\0").decode()
    return int(etcd_post(cluster, "/v3/kv/range", {"key": key, "limit": 1})["header"]["revision"])


def etcd_compact(cluster, revision):
    """Compacts the cluster's etcd up to revision (physically)."""
    return etcd_post(cluster, "/v3/kv/compaction", {"revision": str(revision), "physical": True})


# -- kube-apiserver --------------------------------------------------------------
def open_watches(cluster):
    """{resource: open WATCH requests} from the API server's own metrics
    (apiserver_longrunning_requests). The API server watches some resources
    itself, so compare with a count taken before attache connected."""
    status, body = cluster.request("GET", "/metrics", timeout=5)
    assert status == 200, f"GET /metrics answered {status}"
    counts = {}
    for line in body.splitlines():
        if line.startswith("apiserver_longrunning_requests{") and 'verb="WATCH"' in line:
            labels, value = line.rsplit(" ", 1)
            resource = labels.split('resource="', 1)[1].split('"', 1)[0]
            counts[resource] = counts.get(resource, 0) + int(float(value))
    return counts


def apiserver_watches(cluster):
    """open_watches once the API server's own Service and EndpointSlice
    watches are open (kube-apiserver v1.34 holds one of each): the baseline
    for attache_watching, taken while attache is not watching."""
    return wait_until(lambda: (w := open_watches(cluster)).get("services", 0) >= 1
                      and w.get("endpointslices", 0) >= 1 and w,
                      timeout=15, what="the API server's own watches")


def attache_watching(cluster, baseline):
    """True once the API server holds more Service and EndpointSlice watches
    than `baseline` (open_watches before attache started): attache's are open."""
    counts = open_watches(cluster)
    return all(counts.get(r, 0) > baseline.get(r, 0) for r in ("services", "endpointslices"))


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in front of a loopback port (an API server),
    so a test can cut every open connection while the server stays healthy:
    the watch drops the way a network blip or an idle-timeout drops it."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = loopback_listener()
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.open = set()       # sockets of live connections (both sides)
        self.accepted = 0       # connections accepted so far
        self.blocked = False    # a partition: new connections are refused
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.blocked:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.accepted += 1
                self.open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            with self.lock:
                self.open.discard(src)
                self.open.discard(dst)
            src.close()

    def cut(self):
        """Closes every open connection (new ones are still accepted)."""
        with self.lock:
            sockets = list(self.open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def partition(self):
        """Refuses new connections and cuts the open ones."""
        self.blocked = True
        self.cut()

    def heal(self):
        self.blocked = False

    def close(self):
        self._closing = True
        self.listener.close()
        self.cut()


def proxied_kubeconfig(cluster, proxy, path):
    """A copy of the cluster's kubeconfig whose server is the proxy (same CA:
    the serving certificate is for 127.0.0.1, whatever the port)."""
    config = json.loads(pathlib.Path(cluster.kubeconfig).read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    pathlib.Path(path).write_text(json.dumps(config))
    return path
