"""Real Kubernetes API servers for attache's tests: etcd + kube-apiserver pairs.

Each KubeCluster is one etcd and one kube-apiserver on 127.0.0.1, on free
ports, with all of its state in one directory (etcd data, serving certs,
service-account key, token file, kubeconfig, logs). Several can run side by
side. The binaries come from tools/build.sh (built from Go modules into
${ATTACHE_CACHE:-~/.cache/attache}/bin).

From pytest:

    import sys, pathlib
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[N] / "tools"))
    from kube_cluster import KubeCluster, ensure_binaries

    @pytest.fixture(scope="session")
    def kube_bin():
        return ensure_binaries()          # runs tools/build.sh; instant when built

    @pytest.fixture
    def kube(tmp_path, kube_bin):
        with KubeCluster(tmp_path / "kube", bin_dir=kube_bin) as cluster:
            yield cluster                 # started; stopped (SIGKILL) at exit

    def test_x(kube):
        kube.apply({"apiVersion": "v1", "kind": "Service", ...})
        kube.kubeconfig                   # path for attache's kubernetes source
        kube.server, kube.token, kube.ca_file
        kube.client_cert_file, kube.client_key_file   # CN=attache-test, O=system:masters
        kube.client_ca_file                           # kube-apiserver --client-ca-file
        kube.restart(); kube.kill(); kube.start()

From a shell:

    python3 tools/kube_cluster.py up DIR      # start, print details, run until ^C
    python3 tools/kube_cluster.py check DIR   # start, smoke test, stop

Authentication: a bearer token (--token-auth-file; the kubeconfig's user) and
client certificates (--client-ca-file). The client CA and one client
certificate signed by it (CN=attache-test, O=system:masters, so RBAC allows
everything) are made with the openssl CLI once per workdir, under
workdir/client-pki, and kept across restarts. generate_ca() and
issue_client_cert() make more (e.g. a certificate from a CA the cluster does
not trust).

Network: everything listens on and talks to 127.0.0.1 only. The service
cluster IP range (default 10.0.0.0/24) only labels Service objects: nothing
routes to it and nothing must send to it.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

TOOLS = pathlib.Path(__file__).resolve().parent
CACHE = pathlib.Path(os.environ.get("ATTACHE_CACHE") or pathlib.Path.home() / ".cache" / "attache")
BIN = CACHE / "bin"

_ports_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def ensure_binaries(bin_dir: pathlib.Path | None = None) -> pathlib.Path:
    """Runs tools/build.sh (instant when up to date) and returns the bin dir."""
    if bin_dir is None:
        subprocess.run([str(TOOLS / "build.sh")], check=True)
        bin_dir = BIN
    for name in ("etcd", "kube-apiserver", "kubectl"):
        if not os.access(bin_dir / name, os.X_OK):
            raise FileNotFoundError(f"{bin_dir / name} is missing: run tools/build.sh")
    return bin_dir


def binaries_present(bin_dir: pathlib.Path = BIN) -> bool:
    return all(os.access(bin_dir / n, os.X_OK) for n in ("etcd", "kube-apiserver", "kubectl"))


def free_port() -> int:
    """A port that is free on 127.0.0.1 now and not handed out before by this process."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with _ports_lock:
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port
    raise RuntimeError("no free port found")


def _openssl(*args: str):
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({result.returncode}): "
                           f"{result.stderr.strip()}")


def _new_key(path: pathlib.Path):
    """An RSA 2048 private key (PKCS#8 PEM), mode 0600, written atomically."""
    tmp = path.with_name(path.name + ".tmp")
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(tmp))
    tmp.chmod(0o600)
    os.replace(tmp, path)


def generate_ca(cert_file, key_file, common_name: str = "attache-test-client-ca",
                days: int = 3650):
    """A self-signed CA (key + certificate) with the openssl CLI."""
    cert_file, key_file = pathlib.Path(cert_file), pathlib.Path(key_file)
    _new_key(key_file)
    tmp = cert_file.with_name(cert_file.name + ".tmp")
    _openssl("req", "-x509", "-new", "-key", str(key_file), "-sha256", "-days", str(days),
             "-subj", f"/CN={common_name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-out", str(tmp))
    os.replace(tmp, cert_file)


def issue_client_cert(cert_file, key_file, ca_cert_file, ca_key_file,
                      common_name: str = "attache-test", organizations=("system:masters",),
                      days: int = 3650):
    """A client key + certificate (extendedKeyUsage clientAuth) signed by the
    given CA, with the openssl CLI. Kubernetes takes CN as the user name and
    each O as a group."""
    cert_file, key_file = pathlib.Path(cert_file), pathlib.Path(key_file)
    _new_key(key_file)
    subject = f"/CN={common_name}" + "".join(f"/O={o}" for o in organizations)
    csr = cert_file.with_name(cert_file.name + ".csr")
    ext = cert_file.with_name(cert_file.name + ".ext")
    tmp = cert_file.with_name(cert_file.name + ".tmp")
    try:
        _openssl("req", "-new", "-key", str(key_file), "-subj", subject, "-out", str(csr))
        ext.write_text("basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=clientAuth\n")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert_file), "-CAkey", str(ca_key_file),
                 "-set_serial", "0x" + secrets.token_hex(16), "-sha256", "-days", str(days),
                 "-extfile", str(ext), "-out", str(tmp))
        os.replace(tmp, cert_file)
    finally:
        for leftover in (csr, ext, tmp):
            leftover.unlink(missing_ok=True)


class ClusterError(RuntimeError):
    pass


class KubeCluster:
    """One etcd + kube-apiserver pair on 127.0.0.1, state kept in workdir.

    Ports are chosen on the first start() and kept across stop()/start() and
    restart(), so the kubeconfig stays valid; etcd data survives restarts.
    """

    def __init__(self, workdir, *, name: str = "kube", bin_dir=None,
                 token: str | None = None, service_cidr: str = "10.0.0.0/24",
                 apiserver_args: list[str] | tuple = (), etcd_args: list[str] | tuple = (),
                 die_with_parent: bool = True):
        self.workdir = pathlib.Path(workdir).resolve()
        self.name = name
        self.bin_dir = pathlib.Path(bin_dir) if bin_dir else BIN
        self.service_cidr = service_cidr
        self.extra_apiserver_args = list(apiserver_args)
        self.extra_etcd_args = list(etcd_args)
        self.die_with_parent = die_with_parent
        self.etcd_data = self.workdir / "etcd-data"
        self.cert_dir = self.workdir / "pki"
        self.ca_file = self.cert_dir / "apiserver.crt"  # kube-apiserver writes it
        self.sa_key = self.workdir / "sa.key"
        self.sa_pub = self.workdir / "sa.pub"
        self.token_file = self.workdir / "tokens.csv"
        # Client-certificate auth: made once per workdir, kept across restarts.
        self.client_pki = self.workdir / "client-pki"
        self.client_ca_file = self.client_pki / "ca.crt"      # --client-ca-file
        self.client_ca_key_file = self.client_pki / "ca.key"
        self.client_cert_file = self.client_pki / "client.crt"  # CN=attache-test, O=system:masters
        self.client_key_file = self.client_pki / "client.key"
        self.kubeconfig = self.workdir / "kubeconfig"
        self.etcd_log = self.workdir / "etcd.log"
        self.apiserver_log = self.workdir / "kube-apiserver.log"
        self.token = token
        self.etcd_client_port: int | None = None
        self.etcd_peer_port: int | None = None
        self.port: int | None = None
        self.etcd: subprocess.Popen | None = None
        self.apiserver: subprocess.Popen | None = None
        self.startup_seconds: float | None = None  # of the last start()

    # -- addresses -----------------------------------------------------------
    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.kill()

    def start(self, timeout: float = 120.0) -> "KubeCluster":
        """Starts etcd, then kube-apiserver; returns once /readyz answers ok."""
        if self.running():
            return self
        self._prepare()
        fresh_ports = self.port is None
        attempts = 3 if fresh_ports else 1
        for attempt in range(attempts):
            if fresh_ports:
                self.etcd_client_port, self.etcd_peer_port, self.port = free_port(), free_port(), free_port()
            t0 = time.monotonic()
            try:
                # After kill_apiserver() etcd is still up: start only what is down.
                if self.etcd is None or self.etcd.poll() is not None:
                    self._start_etcd(deadline=t0 + timeout)
                self._start_apiserver(deadline=t0 + timeout)
            except ClusterError as error:
                self.kill()
                # Another process may have taken a port between our probe and
                # the bind: try fresh ports.
                if attempt + 1 < attempts and "address already in use" in str(error):
                    continue
                raise
            self.startup_seconds = time.monotonic() - t0
            self._write_kubeconfig()
            return self
        raise AssertionError("unreachable")

    def running(self) -> bool:
        return all(p is not None and p.poll() is None for p in (self.etcd, self.apiserver))

    def stop(self, timeout: float = 15.0):
        """Graceful stop: SIGTERM kube-apiserver, then etcd (SIGKILL after timeout)."""
        for proc in (self.apiserver, self.etcd):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.apiserver = self.etcd = None

    def kill(self):
        """SIGKILL both processes (a crash, as far as clients can tell)."""
        for proc in (self.apiserver, self.etcd):
            if proc is not None and proc.poll() is None:
                proc.kill()
        for proc in (self.apiserver, self.etcd):
            if proc is not None:
                proc.wait()
        self.apiserver = self.etcd = None

    def kill_apiserver(self):
        """SIGKILL only kube-apiserver (etcd keeps running); start() brings it back."""
        if self.apiserver is not None and self.apiserver.poll() is None:
            self.apiserver.kill()
            self.apiserver.wait()
        self.apiserver = None

    def restart(self, hard: bool = False, timeout: float = 120.0) -> "KubeCluster":
        """Stops (SIGKILL when hard) and starts again on the same ports and data."""
        self.kill() if hard else self.stop()
        return self.start(timeout=timeout)

    # -- clients -------------------------------------------------------------
    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Runs kubectl against this cluster; text output in .stdout/.stderr."""
        cmd = [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig),
               "--cache-dir", str(self.workdir / "kubectl-cache"), *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise ClusterError(f"{' '.join(args)} failed ({result.returncode}): "
                               f"{result.stderr.strip() or result.stdout.strip()}")
        return result

    def apply(self, *objects, check: bool = True) -> subprocess.CompletedProcess:
        """kubectl apply -f - of dicts (sent as a JSON List) or of a YAML/JSON string."""
        if len(objects) == 1 and isinstance(objects[0], str):
            text = objects[0]
        else:
            text = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
        return self.kubectl("apply", "-f", "-", input=text, check=check)

    def ssl_context(self, client_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if client_cert:
            context.load_cert_chain(str(self.client_cert_file), str(self.client_key_file))
        return context

    def request(self, method: str, path: str, body=None, timeout: float = 10.0,
                content_type: str = "application/json", client_cert: bool = False):
        """A raw API call; returns (status, parsed JSON or text). Never raises on HTTP errors.
        Authenticates with the token, or with the client certificate (and no
        token) when client_cert is true."""
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            data = data.encode() if isinstance(data, str) else data
        req = urllib.request.Request(self.server + path, data=data, method=method)
        if not client_cert:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=timeout,
                                        context=self.ssl_context(client_cert)) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    # -- internals -----------------------------------------------------------
    def _prepare(self):
        for name in ("etcd", "kube-apiserver", "kubectl"):
            if not os.access(self.bin_dir / name, os.X_OK):
                raise FileNotFoundError(f"{self.bin_dir / name} is missing: run tools/build.sh")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cert_dir.mkdir(exist_ok=True)
        if not self.sa_key.exists():
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                            "-out", str(self.sa_key)], check=True, capture_output=True)
            subprocess.run(["openssl", "pkey", "-in", str(self.sa_key), "-pubout", "-out", str(self.sa_pub)],
                           check=True, capture_output=True)
        self._prepare_client_pki()
        if self.token is None:
            if self.token_file.exists():
                self.token = self.token_file.read_text().split(",", 1)[0]
            else:
                self.token = "attache-" + secrets.token_hex(16)
        # token,user,uid,"group1,group2": system:masters may do anything under RBAC.
        self.token_file.write_text(f'{self.token},attache-test,attache-test,"system:masters"\n')

    def _prepare_client_pki(self):
        """The client CA and a client certificate it signed; made only when missing."""
        self.client_pki.mkdir(mode=0o700, exist_ok=True)
        if not (self.client_ca_file.exists() and self.client_ca_key_file.exists()):
            generate_ca(self.client_ca_file, self.client_ca_key_file,
                        common_name=f"attache-test-client-ca-{self.name}")
            # A new CA: whatever the old one signed is no longer valid.
            self.client_cert_file.unlink(missing_ok=True)
        if not (self.client_cert_file.exists() and self.client_key_file.exists()):
            issue_client_cert(self.client_cert_file, self.client_key_file,
                              self.client_ca_file, self.client_ca_key_file,
                              common_name="attache-test", organizations=("system:masters",))

    def _popen(self, argv, log_path):
        log = open(log_path, "ab")
        # setpriv sets PDEATHSIG after the fork. A preexec_fn would do it in
        # Python between fork and exec, where the atfork handlers of gRPC
        # (used by the tests in this process) can abort the child.
        if self._pdeathsig_safe() and shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "KILL", "--", *argv]
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=self.workdir)
        finally:
            log.close()

    def _pdeathsig_safe(self) -> bool:
        # The kernel sends PDEATHSIG when the *thread* that forked the child
        # ends, so a cluster started from a short-lived thread would die with
        # it: only ask for it from the main thread.
        return self.die_with_parent and threading.current_thread() is threading.main_thread()

    def _log_tail(self, path, lines=25) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _start_etcd(self, deadline):
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        argv = [str(self.bin_dir / "etcd"),
                f"--name={self.name}",
                f"--data-dir={self.etcd_data}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster={self.name}={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
                *self.extra_etcd_args]
        self.etcd = self._popen(argv, self.etcd_log)
        self._wait("etcd", self.etcd, self.etcd_log, deadline, self._etcd_healthy)

    def _etcd_healthy(self):
        with urllib.request.urlopen(self.etcd_url + "/health", timeout=2) as resp:
            return json.loads(resp.read()).get("health") == "true"

    def _start_apiserver(self, deadline):
        argv = [str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={self.cert_dir}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.sa_pub}",
                f"--service-account-signing-key-file={self.sa_key}",
                f"--service-cluster-ip-range={self.service_cidr}",
                "--authorization-mode=RBAC",
                f"--token-auth-file={self.token_file}",
                f"--client-ca-file={self.client_ca_file}",
                "--anonymous-auth=false",
                "--disable-admission-plugins=ServiceAccount",
                # The "kubernetes" Service would get the advertise address,
                # 127.0.0.1, which Endpoints validation refuses (loopback):
                # without this the log gets that error every 10 s.
                "--endpoint-reconciler-type=none",
                *self.extra_apiserver_args]
        self.apiserver = self._popen(argv, self.apiserver_log)
        self._wait("kube-apiserver", self.apiserver, self.apiserver_log, deadline, self._apiserver_ready)

    def _apiserver_ready(self):
        if not self.ca_file.exists():
            return False
        status, body = self.request("GET", "/readyz", timeout=2)
        return status == 200 and body == "ok"

    def _wait(self, what, proc, log_path, deadline, ready):
        last = None
        while True:
            if proc.poll() is not None:
                raise ClusterError(f"{what} exited with {proc.returncode}; "
                                   f"last lines of {log_path}:\n{self._log_tail(log_path)}")
            try:
                if ready():
                    return
            except (OSError, ValueError, ssl.SSLError) as error:
                last = error
            if time.monotonic() > deadline:
                raise ClusterError(f"{what} not ready in time (last error: {last!r}); "
                                   f"last lines of {log_path}:\n{self._log_tail(log_path)}")
            time.sleep(0.1)

    def _write_kubeconfig(self):
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": self.name, "cluster": {
                "server": self.server, "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": self.name, "user": {"token": self.token}}],
            "contexts": [{"name": self.name, "context": {"cluster": self.name, "user": self.name}}],
            "current-context": self.name,
        }
        tmp = self.kubeconfig.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n")  # JSON is valid kubeconfig YAML
        os.replace(tmp, self.kubeconfig)


# -- command line -------------------------------------------------------------
SMOKE_SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "echo", "namespace": "default"},
    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
}


def smoke_slice(name, address):
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "echo",
                                "endpointslice.kubernetes.io/managed-by": "attache-tests"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
    }


def _check(cluster: KubeCluster):
    print(f"ready in {cluster.startup_seconds:.2f}s at {cluster.server}")
    print("readyz:", cluster.kubectl("get", "--raw", "/readyz").stdout.strip())
    print("version:", cluster.kubectl("version", "-o", "json").stdout.replace("\n", " "))
    status, review = cluster.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                     {"apiVersion": "authentication.k8s.io/v1",
                                      "kind": "SelfSubjectReview"}, client_cert=True)
    print(f"client certificate: {status} {json.dumps(review.get('status') if status == 201 else review)}")
    print(cluster.apply(SMOKE_SERVICE).stdout.strip())
    for name, address in (("echo-doc", "192.0.2.10"), ("echo-loopback", "127.0.0.1")):
        result = cluster.apply(smoke_slice(name, address), check=False)
        print(f"EndpointSlice with {address}: rc={result.returncode} "
              f"{(result.stdout + result.stderr).strip()}")
    print(cluster.kubectl("get", "endpointslices", "-o", "wide").stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "check"])
    parser.add_argument("workdir")
    parser.add_argument("--bin-dir", default=None)
    args = parser.parse_args(argv)
    cluster = KubeCluster(args.workdir, bin_dir=args.bin_dir)
    cluster.start()
    try:
        if args.command == "check":
            _check(cluster)
            return 0
        print(json.dumps({"server": cluster.server, "kubeconfig": str(cluster.kubeconfig),
                          "token": cluster.token, "ca_file": str(cluster.ca_file),
                          "client_cert_file": str(cluster.client_cert_file),
                          "client_key_file": str(cluster.client_key_file),
                          "client_ca_file": str(cluster.client_ca_file),
                          "etcd": cluster.etcd_url, "startup_seconds": round(cluster.startup_seconds, 2)}),
              flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while cluster.running():
            time.sleep(0.5)
        print("a process of the cluster exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
