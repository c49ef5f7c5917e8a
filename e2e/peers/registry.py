"""A fake legacy registry: the registration API of Lyft's `discovery`
service (GET /v1/registration/<service>), on loopback, for tests."""
import collections
import json
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from peers.util import loopback_listener

PREFIX = "/v1/registration/"


class FakeRegistry:
    """Answers GET /v1/registration/<service> from `hosts`, which tests edit.

    Failure modes, all switchable while attache polls:
      status[service] = 500     answer that status instead
      hang = True               hold every request until released (a timeout)
      empty_limit[service] = n  after n answers with no hosts, answer 500 (so a
                                test can stop the registry between two rounds)
      stop() / start()          the registry goes away / comes back (same port)
    """

    def __init__(self, port=0):
        self.port = port
        self.lock = threading.Lock()
        self.hosts = {}
        self.status = {}
        self.empty_limit = {}
        self.hang = False
        self.served = collections.Counter()  # (service, "hosts"|"empty"|status)
        self._release = threading.Event()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def set_hosts(self, service, hosts):
        with self.lock:
            self.hosts[service] = hosts

    def count(self, service, kind):
        with self.lock:
            return self.served[(service, kind)]

    def start(self):
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server API)
                registry._answer(self)

            def log_message(self, *args):
                pass

        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """The registry goes away: the port refuses connections."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def release(self):
        with self.lock:
            self.hang = False
        self._release.set()

    def _answer(self, handler):
        if not handler.path.startswith(PREFIX):
            return self._send(handler, 404, {"error": "not found"})
        service = urllib.parse.unquote(handler.path[len(PREFIX):])
        with self.lock:
            hang = self.hang
        if hang:
            self._release.wait(timeout=30)
        with self.lock:
            status = self.status.get(service, 200)
            hosts = list(self.hosts.get(service, []))
            limit = self.empty_limit.get(service)
            if status == 200 and not hosts and limit is not None \
                    and self.served[(service, "empty")] >= limit:
                status = 500
            kind = status if status != 200 else ("hosts" if hosts else "empty")
            self.served[(service, kind)] += 1
        if service not in self.hosts and status == 200:
            return self._send(handler, 404, {"error": f"no service {service}"})
        if status != 200:
            return self._send(handler, status, {"error": "registry trouble"})
        return self._send(handler, 200, {"service": service, "env": "e2e", "hosts": hosts})

    @staticmethod
    def _send(handler, status, payload):
        body = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # attache gave up waiting (a timeout test)


class BlackHole:
    """A "registry" that accepts connections and never reads or answers."""

    def __init__(self):
        self.sock = loopback_listener(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        # shutdown first: it wakes the blocked accept (close alone would
        # leave it waiting on a descriptor number that may be reused).
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
