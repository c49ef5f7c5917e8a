"""Small helpers shared by the peer fixtures (no pytest dependency)."""
import http.client
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

# Never through a proxy, whatever the environment says: every peer is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Fatal(AssertionError):
    """Raised by a wait_until predicate when waiting longer cannot help
    (for example: the process being waited for has exited)."""


def wait_until(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Polls predicate until it returns a truthy value; returns that value.

    The same contract as e2e/conftest.py's wait_until (which cannot be imported
    by name from here: every test folder has its own `conftest` module)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Fatal:
            raise
        except Exception as error:  # the condition may raise while not ready
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_error!r})" if last_error else ""))


def stopping_factory(make_one):
    """A pytest fixture body: yields make(*args) -> make_one(*args) and stops
    everything made at teardown."""
    made = []

    def make(*args, **kwargs):
        made.append(make_one(*args, **kwargs))
        return made[-1]

    yield make
    for item in made:
        item.stop()


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Stops a peer process: `sig`, then SIGKILL if it lingers."""
    if proc and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def loopback_listener(backlog=64):
    """A listening TCP socket on 127.0.0.1 at a port the kernel picks."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock


def assert_loopback(host):
    """The network rule: peers only ever talk to loopback."""
    if not (host.startswith("127.") or host in ("::1", "localhost")):
        raise AssertionError(f"refusing to talk to non-loopback address {host!r}")


def http_get(url, timeout=5.0):
    """GET url; returns (status, body text). Raises on connection errors."""
    assert_loopback(urllib.parse.urlparse(url).hostname or "")
    request = urllib.request.Request(url)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def http_get_json(url, timeout=5.0):
    status, body = http_get(url, timeout)
    if status != 200:
        raise AssertionError(f"GET {url} answered {status}: {body[:500]}")
    return json.loads(body)


def plain_request(port, path="/", timeout=5.0, host="127.0.0.1"):
    """One HTTP/1.1 request on a fresh connection; returns (status, body)."""
    assert_loopback(host)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def tail(path, lines=60):
    """The last lines of a log file, for failure messages."""
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return f"<no {path}>"


def endpoints(*ports, address="127.0.0.1", **fields):
    """Host-file endpoint entries on loopback for the given ports (the same
    contract as e2e/conftest.py's endpoints)."""
    assert_loopback(address)
    return [dict({"address": address, "port": port}, **fields) for port in ports]
