"""Helpers of the TLS tests.

- A throwaway PKI made with the openssl CLI: CAs, a server certificate for
  127.0.0.1 / localhost and client certificates, all ECDSA P-256 (quick to
  make), in a temporary folder.
- SecretFolder: files laid out the way the kubelet mounts a Kubernetes Secret
  (what cert-manager writes to): every name is a symlink into `..data`, itself
  a symlink to a timestamped folder, and an update swaps `..data` with one
  rename.
- AdsStream / fetch_clusters: a raw ADS stream over grpc.secure_channel."""
import os
import pathlib
import queue
import secrets
import calendar
import subprocess
import threading
import time


def openssl(*args):
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({result.returncode}): "
                           f"{result.stderr.strip()}")
    return result.stdout


def not_after(cert):
    """The certificate's notAfter as unix time."""
    text = openssl("x509", "-enddate", "-noout", "-in", str(cert)).strip()
    return calendar.timegm(time.strptime(text.removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z"))


def _new_key(path):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(path))
    path.chmod(0o600)


class Leaf:
    """A certificate and its key, issued by `ca`."""

    def __init__(self, ca, cert, key):
        self.ca = ca
        self.cert = cert
        self.key = key

    def __repr__(self):
        return f"Leaf({self.cert.name}, ca={self.ca.name})"


class Ca:
    """A self-signed CA that issues server and client certificates."""

    def __init__(self, folder, name):
        self.name = name
        self.folder = pathlib.Path(folder)
        self.cert = self.folder / f"{name}.crt"
        self.key = self.folder / f"{name}.key"
        _new_key(self.key)
        openssl("req", "-x509", "-new", "-key", str(self.key), "-sha256", "-days", "30",
                 "-subj", f"/CN=attache test {name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-out", str(self.cert))

    def _issue(self, name, subject, extensions, days=30):
        cert = self.folder / f"{name}.crt"
        key = self.folder / f"{name}.key"
        csr = self.folder / f"{name}.csr"
        ext = self.folder / f"{name}.ext"
        _new_key(key)
        try:
            openssl("req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr))
            ext.write_text("".join(line + "\n" for line in extensions))
            openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert),
                     "-CAkey", str(self.key), "-set_serial", "0x" + secrets.token_hex(16),
                     "-sha256", "-days", str(days), "-extfile", str(ext), "-out", str(cert))
        finally:
            csr.unlink(missing_ok=True)
            ext.unlink(missing_ok=True)
        return Leaf(self, cert, key)

    def issue_server(self, name="server", days=30):
        """For attache: SAN IP:127.0.0.1 and DNS:localhost, serverAuth."""
        return self._issue(f"{self.name}-{name}", f"/CN={name}", [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature",
            "extendedKeyUsage=serverAuth",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ], days)

    def issue_client(self, name="client", sans=()):
        """For a proxy or a gRPC client: clientAuth, CN=name, and the
        subject alternative names `sans` ("URI:spiffe://...", "DNS:...")."""
        extensions = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature",
            "extendedKeyUsage=clientAuth",
        ]
        if sans:
            extensions.append("subjectAltName=" + ",".join(sans))
        return self._issue(f"{self.name}-{name}", f"/CN={name}", extensions)


class Pki:
    """CAs made on demand in one folder: pki.ca("ca1")."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._cas = {}

    def ca(self, name):
        if name not in self._cas:
            self._cas[name] = Ca(self.folder, name)
        return self._cas[name]


class SecretFolder:
    """Files laid out as the kubelet mounts a Secret (tls.crt, tls.key,
    ca.crt), replaced together with one atomic rename of `..data`."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, name):
        return self.folder / name

    def write(self, files):
        """files: {name: source path or bytes}. Swaps them all in at once."""
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.") + secrets.token_hex(4)
        version = self.folder / stamp
        version.mkdir()
        for name, source in files.items():
            data = source if isinstance(source, bytes) else pathlib.Path(source).read_bytes()
            (version / name).write_bytes(data)
        data_link = self.folder / "..data"
        old = os.readlink(data_link) if data_link.is_symlink() else None
        tmp_link = self.folder / "..data_tmp"
        os.symlink(stamp, tmp_link)
        os.replace(tmp_link, data_link)
        for name in files:
            link = self.folder / name
            if not link.is_symlink():
                os.symlink(f"..data/{name}", link)
        if old:
            for leftover in (self.folder / old).iterdir():
                leftover.unlink()
            (self.folder / old).rmdir()


def tls_config(cert, key, client_ca=None, refresh=None, client_names=None):
    """An xds.tls mapping for attache's config; paths as given (absolute, or
    relative to the config file's folder)."""
    tls = {"cert": str(cert), "key": str(key)}
    if client_ca is not None:
        tls["client_ca"] = str(client_ca)
    if client_names is not None:
        tls["client_names"] = list(client_names)
    if refresh is not None:
        tls["refresh"] = refresh
    return tls


# --- raw xDS over TLS -----------------------------------------------------------
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
# Seconds to wait for a response that must come (generous for slow machines).
RECV_TIMEOUT = float(os.environ.get("ATTACHE_XDS_TIMEOUT", "5"))


def credentials(trust=None, client=None):
    """grpc.ssl_channel_credentials trusting the CA file `trust`, presenting
    the Leaf `client` if given; None for plaintext (no trust, no client)."""
    import grpc
    if trust is None and client is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=pathlib.Path(trust).read_bytes() if trust else None,
        private_key=client.key.read_bytes() if client else None,
        certificate_chain=client.cert.read_bytes() if client else None)


class AdsStream:
    """One ADS stream (state of the world) on a channel of its own: over TLS
    with `creds` (see credentials()), plaintext without."""

    def __init__(self, address, node_id, creds=None):
        import grpc
        from envoy.service.discovery.v3 import ads_pb2_grpc
        # A connection of its own: never a subchannel (and its backoff) shared
        # with an earlier channel of this process.
        options = [("grpc.use_local_subchannel_pool", 1)]
        self.channel = (grpc.secure_channel(address, creds, options=options) if creds
                        else grpc.insecure_channel(address, options=options))
        self.node_id = node_id
        self._requests = queue.Queue()
        self._incoming = queue.Queue()
        self._first = True
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self._call = stub.StreamAggregatedResources(iter(self._requests.get, None))
        self._reader = threading.Thread(target=self._read, daemon=True, name="ads-reader")
        self._reader.start()

    def _read(self):
        import grpc
        try:
            for response in self._call:
                self._incoming.put(response)
        except grpc.RpcError as error:
            self._incoming.put(error)

    def send(self, type_url=CLUSTER, version="", nonce=""):
        from envoy.config.core.v3 import base_pb2
        from envoy.service.discovery.v3 import discovery_pb2
        request = discovery_pb2.DiscoveryRequest(type_url=type_url, version_info=version,
                                                 response_nonce=nonce)
        if self._first:
            request.node.CopyFrom(base_pb2.Node(id=self.node_id, cluster="tls-e2e"))
            self._first = False
        self._requests.put(request)

    def recv(self, timeout=RECV_TIMEOUT):
        """The next response; raises the grpc.RpcError that ended the stream."""
        try:
            item = self._incoming.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no xDS response within {timeout}s") from None
        if isinstance(item, Exception):
            raise item
        return item

    def ack(self, response):
        self.send(response.type_url, response.version_info, response.nonce)

    def close(self):
        self._requests.put(None)
        self._call.cancel()
        self.channel.close()


def cluster_names(response):
    from envoy.config.cluster.v3 import cluster_pb2
    names = []
    for resource in response.resources:
        cluster = cluster_pb2.Cluster()
        cluster.ParseFromString(resource.value)
        names.append(cluster.name)
    return sorted(names)


def fetch_clusters(address, node_id, creds=None, timeout=RECV_TIMEOUT):
    """Opens a stream, asks for CDS and returns the cluster names of the first
    response; raises grpc.RpcError when the stream fails (a refused TLS
    handshake: UNAVAILABLE)."""
    stream = AdsStream(address, node_id, creds)
    try:
        stream.send()
        return cluster_names(stream.recv(timeout))
    finally:
        stream.close()
