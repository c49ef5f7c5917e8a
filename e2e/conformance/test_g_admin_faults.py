"""Hostile clients of the admin port (issue 19, item 4): a slowloris crowd,
a huge request body and a flood of headers. Throughout, probes answer on
the health listener, a well-behaved xDS client keeps getting changes, and
attache's memory does not take in what the attacker sends. Loopback only:
the crowd comes from 127.0.0.2 and up, which are this host too."""
import socket
import time
import urllib.error

from ads_client import envoy_node
from client_faults_support import MIB, Follower, metric, rss_kib
from support import catalog, http_get, wait_until

CROWD_ADDRESSES = 40   # x 16 connections each (the per-peer default) = 640


def open_idle(port, source, count):
    """`count` connections from `source` that send half a request line and
    then nothing (attache's idle timeout closes them after 10 s)."""
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((source, 0))
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /debug/cat")
        except OSError:
            sock.close()
            continue
        held.append(sock)
    return held


def probe(url):
    started = time.monotonic()
    body = http_get(url, timeout=1)
    return body, time.monotonic() - started


def refused_total(attache):
    return sum(metric(attache, "attache_admin_refused_connections_total",
                      listener="admin", limit=limit)
               for limit in ("max_connections", "max_connections_per_peer"))


def test_g1_slowloris_on_the_admin_port_does_not_fail_probes(attache_factory, xds):
    services = catalog("witness")
    attache = attache_factory(services)
    follower = Follower(attache, xds, envoy_node("follower"), services)
    follower.move(9100)
    crowd = []
    try:
        for i in range(CROWD_ADDRESSES):
            crowd += open_idle(attache.admin_port, f"127.0.0.{i + 2}", 20)
        # The admin port is full (256 by default), the health port is not.
        for _ in range(3):
            body, took = probe(attache.health_url + "/healthz")
            assert body == "ok\n" and took < 1.0
            body, took = probe(attache.health_url + "/readyz")
            assert body == "ready\n" and took < 1.0
        follower.move(9101)
        follower.assert_prompt("640 slowloris connections held the admin port")
    finally:
        for sock in crowd:
            sock.close()
    # Once the crowd leaves, the admin port answers again and counted what
    # it refused: of 800 tries at most 256 got in (a few more may race in
    # while others are being set up), the first addresses at 16 each.
    wait_until(lambda: http_get(attache.admin_url + "/healthz", timeout=1) == "ok\n",
               timeout=15, what="the admin port to answer again")
    assert refused_total(attache) >= CROWD_ADDRESSES * 20 - 256 - 16
    assert metric(attache, "attache_admin_refused_connections_total",
                  listener="admin", limit="max_connections_per_peer") > 0
    # The log got a few warnings about it, not one per connection (the
    # rest are at debug level, which these tests log too).
    refusals = sum(1 for line in attache.log().splitlines()
                   if " warning " in line and "listener refused a connection" in line)
    assert 1 <= refusals <= 10, f"{refusals} log lines about refused connections"


def send_until_closed(port, head, chunk, limit_bytes):
    """Sends `head`, then `chunk` repeatedly until attache closes the
    connection or `limit_bytes` went out; returns (bytes sent, reply)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = 0
    try:
        sock.sendall(head)
        while sent < limit_bytes:
            try:
                sock.sendall(chunk)
            except OSError:
                break
            sent += len(chunk)
        try:
            reply = sock.recv(4096)
        except OSError:
            reply = b""
    finally:
        sock.close()
    return sent, reply


def test_g2_huge_body_and_header_flood_are_refused_unread(attache_factory):
    attache = attache_factory(catalog("witness"))
    before = rss_kib(attache.proc.pid)
    # A 256 MiB POST: answered 405 at once, the body never read.
    sent, reply = send_until_closed(
        attache.admin_port,
        b"POST /debug/catalog HTTP/1.1\r\nHost: x\r\nContent-Length: 268435456\r\n\r\n",
        b"x" * MIB, 256 * MIB)
    assert reply.startswith(b"HTTP/1.1 405"), reply[:80]
    assert sent < 64 * MIB, f"attache kept reading a refused body: {sent} bytes"
    # A million headers: refused once they pass 16 KiB.
    sent, reply = send_until_closed(
        attache.admin_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
        b"X-Flood: 0123456789abcdef\r\n" * 1000, 1_000_000 * 27)
    assert reply[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 413"), reply[:80]
    assert sent < 16 * MIB
    grown = rss_kib(attache.proc.pid) - before
    assert grown < 20 * 1024, f"RSS grew by {grown} KiB"
    assert http_get(attache.admin_url + "/healthz") == "ok\n"
    assert metric(attache, "attache_admin_requests_total", listener="admin",
                  code="405") == 1
