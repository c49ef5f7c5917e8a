"""gRPC peers: echo servers on 127.0.0.1 and proxyless xDS clients (Python
grpcio and Debian's grpc++ 1.51), each client in its own process."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
from concurrent import futures

from .util import Fatal, http_get_json, tail, wait_until

SERVICE = "attache.test.Echo"
METHOD = "Hello"
FULL_METHOD = f"/{SERVICE}/{METHOD}"
PEERS_DIR = pathlib.Path(__file__).resolve().parent
PY_CLIENT = PEERS_DIR / "grpc_py_client.py"
ROOT = PEERS_DIR.parent.parent


class GrpcEchoServer:
    """A grpcio server with one unary method that answers its own name as bytes
    (a generic handler, no .proto)."""

    def __init__(self, name):
        import grpc  # imported here so that the Envoy tests need no grpc
        self.name = name
        self.calls = 0
        self._lock = threading.Lock()

        def hello(request, context):
            with self._lock:
                self.calls += 1
            return self.name.encode()

        handler = grpc.method_handlers_generic_handler(
            SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(hello)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                  handlers=(handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("could not bind a gRPC server on 127.0.0.1")
        self.server.start()

    def stop(self):
        if self.server is not None:
            self.server.stop(grace=None).wait(5)
            self.server = None

    def __repr__(self):
        return f"GrpcEchoServer({self.name!r}, port={self.port})"


def write_bootstrap(path, xds_port, node_id, node_cluster="e2e", zone="zone-a"):
    """A gRFC A27 bootstrap pointing at attache on 127.0.0.1."""
    bootstrap = {
        "xds_servers": [{
            "server_uri": f"127.0.0.1:{xds_port}",
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"],
        }],
        "node": {"id": node_id, "cluster": node_cluster, "locality": {"zone": zone}},
    }
    pathlib.Path(path).write_text(json.dumps(bootstrap, indent=2))
    return path


def cpp_client_binary():
    build = os.environ.get("ATTACHE_BUILD_DIR", str(ROOT / "build"))
    return pathlib.Path(build) / "grpc_xds_client"


class XdsClient:
    """A proxyless gRPC client process that dials a target and calls
    /attache.test.Echo/Hello in a loop, printing one line per call: the name of
    the server that answered, or `ERROR <code> <message>`.

    kind is "python" (grpcio, e2e/peers/grpc_py_client.py) or "cpp" (grpc++
    1.51, e2e/peers/grpc_xds_client.cc). count 0 means: call until stopped
    (each client also stops by itself after max_seconds)."""

    def __init__(self, kind, bootstrap_path, target, workdir, count=0,
                 interval_ms=10, max_seconds=120):
        self.kind = kind
        self.workdir = pathlib.Path(workdir)
        self.stderr_path = self.workdir / f"{kind}-client.stderr"
        self.lines = []
        self._lock = threading.Lock()
        env = dict(os.environ)
        # Must be set before gRPC initialises its xDS client: a fresh process.
        env["GRPC_XDS_BOOTSTRAP"] = str(bootstrap_path)
        env.pop("GRPC_XDS_BOOTSTRAP_CONFIG", None)
        # Proxies never apply: every address is loopback.
        for proxy in ("http_proxy", "https_proxy", "grpc_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(proxy, None)
        if os.environ.get("E2E_GRPC_TRACE"):
            env["GRPC_TRACE"] = os.environ["E2E_GRPC_TRACE"]
            env["GRPC_VERBOSITY"] = "DEBUG"
        args = [target, str(count), str(interval_ms), str(max_seconds)]
        if kind == "python":
            command = [sys.executable, str(PY_CLIENT)] + args
        elif kind == "cpp":
            binary = cpp_client_binary()
            if not binary.exists():
                raise AssertionError(
                    f"{binary} is missing: build it with `ninja -C <build> grpc_xds_client` "
                    "(or set ATTACHE_BUILD_DIR)")
            command = [str(binary)] + args
        else:
            raise ValueError(kind)
        self.command = command
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL, env=env, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True,
                                        name=f"{kind}-client-reader")
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self):
        with self._lock:
            return list(self.lines)

    def replies(self, since=0):
        return self.snapshot()[since:]

    def errors(self, since=0):
        return [line for line in self.replies(since) if line.startswith("ERROR")]

    def running(self):
        return self.proc.poll() is None

    def wait_for_replies(self, predicate, timeout=30, what="client replies"):
        """Polls predicate(lines) until truthy; fails early if the client died."""
        def check():
            lines = self.snapshot()
            if predicate(lines):
                return True
            if not self.running():
                self._reader.join(timeout=2)
                if predicate(self.snapshot()):
                    return True
                raise Fatal(f"{self.kind} client exited with {self.proc.returncode}\n"
                            f"{self.describe()}")
            return False
        try:
            return wait_until(check, timeout=timeout, interval=0.05, what=what)
        except Fatal:
            raise
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.describe()}") from None

    def wait_exit(self, timeout=60):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.kind} client still running after {timeout}s\n"
                                 f"{self.describe()}") from None
        self._reader.join(timeout=5)
        return self.proc.returncode

    def describe(self):
        lines = self.snapshot()
        errors = [line for line in lines if line.startswith("ERROR")]
        distinct = list(dict.fromkeys(errors))
        return (f"command: {' '.join(self.command)}\n"
                f"stdout: {len(lines)} lines, {len(errors)} errors; last lines: {lines[-5:]}\n"
                f"distinct errors (up to 3): {distinct[:3]}\n"
                f"--- stderr ---\n{tail(self.stderr_path, 20)}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self._stderr.close()


# --- attache's view of its clients -------------------------------------------
TYPE_PREFIX = "type.googleapis.com/"
LISTENER = TYPE_PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = TYPE_PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER = TYPE_PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = TYPE_PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"


def debug_clients(admin_url):
    """attache's GET /debug/clients: a list of clients (or {"clients": [...]})."""
    data = http_get_json(admin_url + "/debug/clients")
    if isinstance(data, dict) and "clients" in data:
        data = data["clients"]
    return data


def clients_of_node(admin_url, node_id):
    """The /debug/clients entries that mention node_id (anywhere in the entry)."""
    needle = json.dumps(node_id)
    return [client for client in debug_clients(admin_url) if needle in json.dumps(client)]


def nacks(client):
    """{type_url: nack_count} for the types with a non-zero nack_count."""
    return {type_url: state.get("nack_count")
            for type_url, state in client.get("types", {}).items()
            if state.get("nack_count") != 0}
