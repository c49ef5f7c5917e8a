"""Registry faults end to end: a legacy registry that answers garbage for one
service (not JSON, the wrong shape, truncated, binary, HTML, a body too large
to hold, a gzip bomb), that answers slower than the timeout, or that accepts
connections and never answers.

For every fault: the last good endpoints of the affected service stay served
exactly; the other services keep updating; the failure is counted in
/metrics (attache_source_errors_total) and shown in /debug/sources; the log
names the service and the problem; and once the registry answers properly
again its new state is applied."""
import json
import random
import re
import time
import urllib.parse
import zlib

import pytest

from ads_client import CLUSTER, ENDPOINT, by_name
from peers.registry import PREFIX, BlackHole, FakeRegistry
from peers.util import http_get, wait_until
from test_registry import (SOURCE, endpoint_rows, eds_stream, host, ports_of,
                           served_now, source_status, start_attache, wait_for_cla)


class FaultyRegistry(FakeRegistry):
    """A FakeRegistry whose answer for a service can be replaced by a fault:
    faults[service] = callable(handler) writes whatever it likes."""

    def __init__(self):
        super().__init__()
        self.faults = {}

    def _answer(self, handler):
        service = urllib.parse.unquote(handler.path[len(PREFIX):])
        with self.lock:
            fault = self.faults.get(service)
            if fault is not None:
                self.served[(service, "fault")] += 1
        if fault is None:
            return super()._answer(handler)
        try:
            fault(handler)
        except (BrokenPipeError, ConnectionResetError):
            pass  # attache gave up on it


@pytest.fixture
def faulty():
    instance = FaultyRegistry().start()
    yield instance
    instance.stop()


# --- faults ----------------------------------------------------------------------
def answer(status, body, content_type="application/json", length=None, headers=()):
    def write(handler):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True
    return write


def good_json(service="alpha"):
    return json.dumps({"service": service, "env": "e2e",
                       "hosts": [host(9101), host(9102)]}).encode()


def huge(handler):
    """A valid start, then more than attache holds (64 MiB)."""
    chunk = b" " * (1 << 20)
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(70 * len(chunk) + 2))
    handler.end_headers()
    handler.wfile.write(b"{")
    for _ in range(70):
        handler.wfile.write(chunk)
    handler.wfile.write(b"}")


def _gzip_bomb():
    """100 MiB of zeros in about 100 KiB of gzip."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    return b"".join([compressor.compress(chunk) for _ in range(100)] + [compressor.flush()])


_BOMB = []


def gzip_bomb(handler):
    if not _BOMB:
        _BOMB.append(_gzip_bomb())
    answer(200, _BOMB[0], headers=[("Content-Encoding", "gzip")])(handler)


def trickle(handler):
    """Headers at once, then a byte every 50 ms: slower than the timeout."""
    body = good_json()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    deadline = time.monotonic() + 10
    for byte in body:
        if time.monotonic() > deadline:
            return
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        time.sleep(0.05)


def gzip_garbage(handler):
    """Content-Encoding gzip over bytes that are not gzip."""
    answer(200, b"\x1f\x8b this is not gzip at all",
           headers=[("Content-Encoding", "gzip")])(handler)


BINARY = bytes(random.Random(7).randrange(256) for _ in range(4096))

# name: (fault, what attache's last_error and log say, source timeout)
FAULTS = {
    "not-json": (answer(200, b"this is not json"), "not valid JSON", "1s"),
    "html-200": (answer(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                        content_type="text/html"), "not valid JSON", "1s"),
    "truncated-json": (answer(200, good_json()[:len(good_json()) // 2]),
                       "not valid JSON", "1s"),
    "binary": (answer(200, BINARY, content_type="application/octet-stream"),
               "not valid JSON", "1s"),
    "empty-body": (answer(200, b""), "not valid JSON", "1s"),
    "deep-nesting": (answer(200, b"[" * 200_000 + b"]" * 200_000), "not valid JSON", "1s"),
    "a-list": (answer(200, b"[1, 2, 3]"), "the answer is a list, not an object", "1s"),
    "hosts-a-string": (answer(200, b'{"service": "alpha", "hosts": "127.0.0.1:9101"}'),
                       '"hosts" is a string, not a list', "1s"),
    "no-hosts": (answer(200, b'{"service": "alpha", "env": "e2e"}'),
                 'the answer has no "hosts"', "1s"),
    "every-host-unusable": (
        answer(200, json.dumps({"service": "alpha", "hosts": [
            {"ip_address": "not-an-address", "port": 9101},
            {"ip_address": "127.0.0.1", "port": "x"},
            17]}).encode()),
        "none of its 3 hosts is usable", "1s"),
    "cut-short": (answer(200, good_json()[:40], length=len(good_json())),
                  "transfer closed", "1s"),
    "gzip-garbage": (gzip_garbage, "unencoding", "1s"),
    "huge-body": (huge, "larger than 64 MiB", "10s"),
    "gzip-bomb": (gzip_bomb, "larger than 64 MiB", "10s"),
    "slower-than-timeout": (trickle, "timed out", "500ms"),
}


def wait_for_all(stream, expected, timeout=20):
    """Receives EDS pushes until the latest ClusterLoadAssignment seen of each
    service in `expected` has exactly the ports listed; returns them."""
    latest = {}

    def done(response):
        if response.type_url == ENDPOINT:
            latest.update(by_name(response))
        return all(name in latest and ports_of(latest[name]) == listed
                   for name, listed in expected.items())
    stream.recv_until(done, timeout=timeout)
    return latest


def errors_metric(attache):
    """attache_source_errors_total of the registry source, from /metrics."""
    status, text = http_get(attache.admin_url + "/metrics")
    assert status == 200
    found = re.search(r'^attache_source_errors_total\{source="%s"\} (\S+)$' % SOURCE,
                      text, re.MULTILINE)
    assert found, "attache_source_errors_total for the registry source is missing"
    return float(found.group(1))


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_bad_answer_for_one_service_keeps_its_last_endpoints(attache_factory, faulty, xds,
                                                               fault):
    write, symptom, timeout = FAULTS[fault]
    faulty.set_hosts("alpha", [host(9101), host(9102)])
    faulty.set_hosts("beta", [host(9201)])
    attache = start_attache(attache_factory, faulty, ["alpha", "beta"], timeout=timeout)
    stream = eds_stream(xds, attache, ["alpha", "beta"])
    first = wait_for_all(stream, {"alpha": [9101, 9102], "beta": [9201]})
    before = endpoint_rows(first["alpha"])
    wait_until(lambda: source_status(attache)["state"] == "synced", what="source synced")
    errors_before = source_status(attache)["errors"]
    metric_before = errors_metric(attache)

    faulty.faults["alpha"] = write
    # Behind the garbage the registry "knows" other hosts: never served.
    faulty.set_hosts("alpha", [host(9109)])
    # Another service of the same registry changes meanwhile: applied.
    faulty.set_hosts("beta", [host(9201), host(9202)])
    wait_for_cla(stream, "beta", lambda cla: ports_of(cla) == [9201, 9202], timeout=20)
    status = wait_until(
        lambda: (lambda s: s if s["state"] == "stale" and s["errors"] >= errors_before + 2
                 else None)(source_status(attache)),
        timeout=30, what="two failed rounds, the source stale")
    assert symptom in status["last_error"], status
    assert "service alpha" in status["last_error"], status
    assert "beta" not in status["last_error"], status
    assert errors_metric(attache) >= metric_before + 2
    logged = [line for line in attache.log().splitlines()
              if "service alpha" in line and symptom in line]
    assert logged, attache.log()[-3000:]
    assert "keeping its last good endpoints" in logged[0]
    # Exactly what was served before, both to a new client and on the stream.
    assert endpoint_rows(served_now(xds, attache, "alpha")) == before
    for response in stream.received:
        if response.type_url == ENDPOINT and "alpha" in by_name(response):
            assert endpoint_rows(by_name(response)["alpha"]) == before

    del faulty.faults["alpha"]
    wait_for_cla(stream, "alpha", lambda cla: ports_of(cla) == [9109], timeout=20)
    wait_until(lambda: source_status(attache)["state"] == "synced",
               what="the source synced again")
    assert ports_of(served_now(xds, attache, "beta")) == [9201, 9202]


def test_bad_answers_for_several_services_at_once(attache_factory, faulty, xds):
    """Three services go bad in three different ways, two stay good: each bad
    one keeps its own endpoints, the good ones update, the error names all
    three, and they recover one by one."""
    ports = {"a": [9101], "b": [9201], "c": [9301], "d": [9401], "e": [9501]}
    for name, listed in ports.items():
        faulty.set_hosts(name, [host(p) for p in listed])
    attache = start_attache(attache_factory, faulty, sorted(ports))
    stream = eds_stream(xds, attache, sorted(ports))
    wait_for_all(stream, ports)

    faulty.faults["a"] = FAULTS["not-json"][0]
    faulty.faults["b"] = answer(503, b"overloaded")
    faulty.faults["c"] = FAULTS["a-list"][0]
    for name in ports:
        faulty.set_hosts(name, [host(ports[name][0] + 1)])
    wait_for_all(stream, {"d": [9402], "e": [9502]})
    status = wait_until(lambda: (lambda s: s if s["state"] == "stale" else None)(
        source_status(attache)), what="the source stale")
    for name, problem in (("a", "not valid JSON"), ("b", "HTTP 503"), ("c", "a list")):
        assert f"service {name}: " in status["last_error"], status
        assert problem in status["last_error"], status
        assert ports_of(served_now(xds, attache, name)) == ports[name]

    for name in ("b", "a", "c"):
        del faulty.faults[name]
        wait_for_cla(stream, name, lambda cla, name=name: ports_of(cla) == [ports[name][0] + 1])
    wait_until(lambda: source_status(attache)["state"] == "synced", what="synced again")


def test_a_registry_that_never_answers(attache_factory, xds):
    """A black hole for a registry of twelve services: attache starts in
    about one timeout (it took one per four services: 3 s here, a minute with
    100 services and the default timeout), serves its other sources, and
    reports the timeouts; the polling thread keeps asking every service."""
    hole = BlackHole()
    try:
        names = [f"svc-{i}" for i in range(12)]
        source = {"name": SOURCE, "type": "registry", "url": hole.url, "services": names,
                  "interval": "100ms", "timeout": "1s"}
        started = time.monotonic()
        attache = attache_factory(
            {"echo": {"endpoints": [{"address": "127.0.0.1", "port": 9001}]}},
            extra_config={"sources": [
                {"name": "hosts", "type": "file", "path": "hosts.yaml"}, source]})
        took = time.monotonic() - started
        print(f"\nstarted in {took:.2f}s with a registry that never answers (timeout 1s)")
        stream = xds(attache)
        clusters = by_name(stream.subscribe(CLUSTER))
        assert set(clusters) == {"echo"}
        status = source_status(attache)
        assert "timed out" in status["last_error"], status
        assert "service svc-0" in status["last_error"], status
        assert not status["synced_once"]
        assert took < 2.5, f"start-up took {took:.1f}s"
        # The first polling round asks all twelve (on top of the four at start-up).
        wait_until(lambda: len(hole.accepted) >= 4 + 12, timeout=15,
                   what="every service asked by the polling thread")
    finally:
        hole.close()
