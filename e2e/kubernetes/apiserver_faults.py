"""A fault-injecting HTTPS proxy in front of a real kube-apiserver.

The proxy terminates TLS with its own test CA and a certificate for
127.0.0.1, forwards every request to the real API server with the cluster's
own credentials (its bearer token, or its client certificate), and can be
switched at run time into one fault mode:

- PASS: forwards everything untouched.
- HANG: accepts connections and reads requests but never answers; streams
  already open freeze (no more bytes reach attache).
- TRICKLE: every byte to attache (status line, headers, bodies, watch events)
  waits `trickle_ms` after the previous one, on open streams too.
- ERROR_500: lists and watches answer HTTP 500 with a Status body; open
  watches are cut.
- CLOSE_WATCHES: every watch is cut (the connection shut down mid-stream,
  without a TLS close) one second after it opened (or after the mode was
  switched on).
- GONE: every watch answers 200 then a watch event {"type":"ERROR"} with a
  Status of code 410, as the real server does for an expired resourceVersion
  (or HTTP 410 with `gone_http=True`); open watches are cut.
- MALFORMED: the malformed lines queued with `inject(name)` (see
  MALFORMED_LINES) are sent, one each, before the next real watch events
  (not bookmarks); with nothing queued, events pass untouched.

Every request is recorded (time, list/watch, resource, mode) so a test can
count what attache sent, e.g. that it backs off instead of relisting in a
loop. Only loopback is ever contacted.
"""
import http.client
import json
import pathlib
import select
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse

from peers.util import loopback_listener

PASS, HANG, TRICKLE, ERROR_500, CLOSE_WATCHES, GONE, MALFORMED = (
    "pass", "hang", "trickle", "500", "close-watches", "410", "malformed")

# Malformed watch lines, each a different way a watch event can be broken.
MALFORMED_LINES = {
    "invalid JSON": b'{"type":"MODIFIED","object":{"metadata":',
    "wrong types": b'{"type":42,"object":"not an object"}',
    "unknown event type": (b'{"type":"EXPLODED","object":{"metadata":{"name":"x",'
                           b'"namespace":"default","resourceVersion":"1"}}}'),
    "object without metadata": b'{"type":"ADDED","object":{"kind":"EndpointSlice","endpoints":[]}}',
    # 4 MiB of JSON string: more than any real event, still one line.
    "huge line": b'{"type":"MODIFIED","object":{"metadata":{"name":"' + b"x" * (4 << 20) + b'"}',
    # Well-formed, but no resourceVersion (every real event has one): an
    # EndpointSlice of the Service named by `phantom_service`, with an
    # endpoint the real server never had.
    "no resourceVersion": None,
    # A line that never ends: 1 MiB pieces without a newline until attache
    # hangs up (or ENDLESS_LIMIT is sent).
    "endless line": None,
}
ENDLESS_LIMIT = 64 << 20
PHANTOM_ADDRESS = "203.0.113.250"


def _openssl(*args):
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {result.stderr.strip()}")


def make_serving_cert(folder):
    """A throwaway CA and a certificate for IP 127.0.0.1 it signed, made with
    the openssl CLI in `folder`. Returns (ca_file, cert_file, key_file)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "proxy-ca.crt", folder / "proxy-ca.key"
    cert, key = folder / "proxy.crt", folder / "proxy.key"
    csr, ext = folder / "proxy.csr", folder / "proxy.ext"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
             "-subj", "/CN=attache-e2e-fault-proxy-ca", "-days", "2", "-sha256",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(ca))
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-subj", "/CN=127.0.0.1", "-out", str(csr))
    ext.write_text("basicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


class _Cut(Exception):
    """The proxy cut this stream (a fault mode, or close())."""


class _Stream:
    """One request being answered: its sockets and what it is."""

    def __init__(self, client, kind, resource):
        self.client = client
        self.upstream = None  # http.client connection, once forwarding
        self.kind = kind
        self.resource = resource
        self.started = time.monotonic()
        self.cut = False

    def kill(self):
        self.cut = True
        for sock in (self.client, self.upstream.sock if self.upstream else None):
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FaultyApiServer:
    """The proxy (see the module docstring). `kubeconfig(path)` writes a copy
    of the cluster's kubeconfig that points at the proxy and trusts its CA."""

    def __init__(self, cluster, workdir, trickle_ms=50, gone_http=False):
        self.cluster = cluster
        self.workdir = pathlib.Path(workdir)
        self.trickle_ms = trickle_ms
        self.gone_http = gone_http
        self.ca_file, cert, key = make_serving_cert(self.workdir / "fault-proxy-pki")
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_context.load_cert_chain(str(cert), str(key))
        # Upstream: the cluster's own CA and credentials.
        config = json.loads(pathlib.Path(cluster.kubeconfig).read_text())
        user = config["users"][0]["user"]
        self.upstream_token = user.get("token")
        self.upstream_context = ssl.create_default_context(
            cafile=config["clusters"][0]["cluster"]["certificate-authority"])
        if user.get("client-certificate"):
            self.upstream_context.load_cert_chain(user["client-certificate"], user["client-key"])
        self.lock = threading.Lock()
        self.mode = PASS
        self.mode_since = time.monotonic()
        self.requests = []   # (time, kind "list"/"watch", resource, mode)
        self.injected = []   # (time, name of the malformed sample, resource)
        self.endless_sent = []  # bytes of each endless line sent before attache hung up
        self.phantom_service = "phantom"
        self.streams = set()
        self._queued = []
        self._released = threading.Event()  # set at close(): hung requests end
        self._closing = False
        self.listener = loopback_listener()
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._reaper, daemon=True).start()

    # -- control ----------------------------------------------------------------
    def set_mode(self, mode):
        """Switches the fault; modes that fail requests also cut open watches."""
        with self.lock:
            self.mode = mode
            self.mode_since = time.monotonic()
            streams = list(self.streams)
        if mode in (ERROR_500, GONE):
            for stream in streams:
                if stream.kind == "watch":
                    stream.kill()

    def heal(self):
        self.set_mode(PASS)

    def inject(self, name):
        """Queues the malformed line `name` for the next real watch event."""
        assert name in MALFORMED_LINES, name
        with self.lock:
            self._queued.append(name)

    def count(self, kind=None, resource=None, since=0.0):
        with self.lock:
            return sum(1 for t, k, r, _ in self.requests
                       if t >= since and (kind is None or k == kind)
                       and (resource is None or r == resource))

    def watch_age(self, resource):
        """Seconds the newest open watch of resource has been streaming (0: none)."""
        with self.lock:
            ages = [time.monotonic() - s.started for s in self.streams
                    if s.kind == "watch" and s.resource == resource and not s.cut]
        return min(ages, default=0.0)

    def kubeconfig(self, path):
        """A copy of the cluster's kubeconfig whose server is this proxy, with
        the proxy's CA; the user (token or client certificate) is unchanged."""
        config = json.loads(pathlib.Path(self.cluster.kubeconfig).read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{self.port}"
        config["clusters"][0]["cluster"]["certificate-authority"] = str(self.ca_file)
        pathlib.Path(path).write_text(json.dumps(config))
        return path

    def close(self):
        self._closing = True
        self._released.set()
        self.listener.close()
        with self.lock:
            streams = list(self.streams)
        for stream in streams:
            stream.kill()

    # -- serving ----------------------------------------------------------------
    def _accept(self):
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _reaper(self):
        """CLOSE_WATCHES: cuts every watch one second after it opened."""
        while not self._closing:
            time.sleep(0.05)
            with self.lock:
                if self.mode != CLOSE_WATCHES:
                    continue
                since = self.mode_since
                due = [s for s in self.streams if s.kind == "watch" and not s.cut
                       and time.monotonic() - max(s.started, since) >= 1.0]
            for stream in due:
                stream.kill()

    def _serve(self, raw):
        try:
            raw.settimeout(10)
            client = self.server_context.wrap_socket(raw, server_side=True)
            client.settimeout(None)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        stream = None
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            url = urllib.parse.urlsplit(target)
            query = urllib.parse.parse_qs(url.query)
            kind = "watch" if query.get("watch") == ["true"] else "list"
            resource = url.path.rstrip("/").rsplit("/", 1)[-1]
            stream = _Stream(client, kind, resource)
            with self.lock:
                mode = self.mode
                self.requests.append((time.monotonic(), kind, resource, mode))
                self.streams.add(stream)
            self._answer(stream, method, target, headers, mode)
        except (_Cut, OSError, ssl.SSLError, http.client.HTTPException, ValueError):
            pass
        finally:
            if stream is not None:
                with self.lock:
                    self.streams.discard(stream)
                if stream.upstream is not None:
                    stream.upstream.close()
            try:
                client.close()
            except OSError:
                pass

    def _answer(self, stream, method, target, headers, mode):
        if mode == HANG:
            self._released.wait()  # read the request, never answer
            raise _Cut()
        if mode == ERROR_500:
            self._status(stream, 500, "InternalError", "injected by the e2e fault proxy")
            return
        if mode == GONE and stream.kind == "watch":
            if self.gone_http:
                self._status(stream, 410, "Expired", "too old resource version (injected)")
                return
            self._send(stream, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
            self._chunk(stream, self._gone_event())
            self._send(stream, b"0\r\n\r\n")
            return
        upstream = http.client.HTTPSConnection("127.0.0.1", self.cluster.port,
                                               context=self.upstream_context, timeout=30)
        stream.upstream = upstream
        forwarded = {k: v for k, v in headers.items()
                     if k.lower() in ("accept", "user-agent", "content-type")}
        if self.upstream_token:
            forwarded["Authorization"] = f"Bearer {self.upstream_token}"
        upstream.request(method, target, headers=forwarded)
        response = upstream.getresponse()
        if stream.kind == "watch":
            upstream.sock.settimeout(None)
        head = [f"HTTP/1.1 {response.status} {response.reason}"]
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                head.append(f"{name}: {value}")
        head += ["Transfer-Encoding: chunked", "Connection: close", "", ""]
        self._send(stream, "\r\n".join(head).encode("latin-1"))
        if stream.kind == "watch" and response.status == 200:
            while True:
                line = response.readline()
                if not line:
                    break
                self._before_event(stream, line)
                self._chunk(stream, line)
        else:
            while True:
                data = response.read1(65536)
                if not data:
                    break
                self._chunk(stream, data)
        self._send(stream, b"0\r\n\r\n")

    def _before_event(self, stream, line):
        """Faults that act on a watch that is already streaming."""
        # attache sends nothing after its request: a readable socket means it
        # hung up (after a malformed line, say). Stop here rather than count
        # an injection nobody reads.
        if select.select([stream.client], [], [], 0)[0]:
            raise _Cut()
        with self.lock:
            mode = self.mode
        if mode == GONE:
            self._chunk(stream, self._gone_event())
            raise _Cut()
        if mode == MALFORMED and b'"type":"BOOKMARK"' not in line:
            with self.lock:
                if not self._queued:
                    return
                name = self._queued.pop(0)
                self.injected.append((time.monotonic(), name, stream.resource))
            if name == "endless line":
                self._endless(stream)
            self._chunk(stream, self._malformed(name) + b"\n")

    def _malformed(self, name):
        if name != "no resourceVersion":
            return MALFORMED_LINES[name]
        service = self.phantom_service
        slice_ = {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
                  "metadata": {"name": f"{service}-phantom", "namespace": "default",
                               "labels": {"kubernetes.io/service-name": service}},
                  "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                  "endpoints": [{"addresses": [PHANTOM_ADDRESS], "zone": "zone-a",
                                 "conditions": {"ready": True}}]}
        return json.dumps({"type": "ADDED", "object": slice_}).encode()

    def _endless(self, stream):
        """Sends 1 MiB pieces of one line until attache hangs up."""
        piece = b"x" * (1 << 20)
        sent = 0
        try:
            self._send(stream, b"%x\r\n" % ENDLESS_LIMIT + b'{"type":"MODIFIED","object":"')
            while sent < ENDLESS_LIMIT - 64:
                if select.select([stream.client], [], [], 0)[0]:
                    raise _Cut()
                chunk = piece[:min(len(piece), ENDLESS_LIMIT - 64 - sent)]
                self._send(stream, chunk)
                sent += len(chunk)
        finally:
            with self.lock:
                self.endless_sent.append(sent)
        raise _Cut()  # attache never hung up: stop the stream anyway

    @staticmethod
    def _gone_event():
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": "too old resource version: 1 (injected)", "reason": "Expired",
                  "code": 410}
        return json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"

    def _status(self, stream, code, reason, message):
        body = json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason,
                           "code": code}).encode()
        self._send(stream, (f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
                   + body)

    def _chunk(self, stream, data):
        self._send(stream, b"%x\r\n" % len(data) + data + b"\r\n")

    def _send(self, stream, data):
        """Writes to attache as the current mode allows: frozen while HANG,
        a byte per trickle_ms while TRICKLE."""
        view = memoryview(data)
        while view:
            if stream.cut:
                raise _Cut()
            with self.lock:
                mode = self.mode
            if mode == HANG:
                time.sleep(0.05)
                continue
            if mode == TRICKLE:
                stream.client.sendall(view[:1])
                view = view[1:]
                time.sleep(self.trickle_ms / 1000)
                continue
            stream.client.sendall(view)
            return
