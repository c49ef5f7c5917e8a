"""Helpers for test_e_client_faults.py: hostile and faulty xDS clients.

A `Follower` is the well-behaved client every fault test keeps next to the
hostile one: it holds one service's endpoints and times how long each
host-file change takes to reach it. `RawCall` sends arbitrary bytes as gRPC
messages (identity serializers), for requests the official schema cannot
express. `BlindClient` speaks HTTP/2 by hand and never reads its socket.
"""
import json
import os
import pathlib
import queue
import re
import threading
import time

import grpc

from ads_client import ENDPOINT, MAX_MESSAGE, by_name
from support import endpoint_ports, endpoints, http_get, wait_until

ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
SOTW_METHOD = ADS + "StreamAggregatedResources"
DELTA_METHOD = ADS + "DeltaAggregatedResources"
MIB = 1024 * 1024

# How long a change may take to reach a well-behaved client while another
# client misbehaves. attache debounces for 10 ms (max 100 ms) in these tests
# and usually delivers in a few tens of ms; the bound leaves room for a slow
# CI machine, and is still far below what a head-of-line block would cost
# (forever).
PROMPT = float(os.environ.get("ATTACHE_FAULT_PROMPT", "2.0"))


def big_catalog(services, endpoints_per_service, base_port=20000):
    """{name: service} with many endpoints: responses of several MiB."""
    catalog = {}
    for index in range(services):
        name = f"bulk-{index:05d}"
        first = base_port + (index * endpoints_per_service) % 40000
        catalog[name] = {"endpoints": [
            {"address": f"127.0.{(index >> 8) & 255}.{index & 255}",
             "port": first + offset, "zone": f"zone-{offset % 3}"}
            for offset in range(endpoints_per_service)]}
    return catalog


def write_json_hosts(path, services):
    """A host file written as JSON (also YAML), atomically: much faster to
    write and to read than YAML for 100,000 endpoints."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"services": services}))
    os.replace(tmp, path)


def rss_kib(pid):
    """Resident set size of a process, KiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid):
    """User + system CPU time a process has used, seconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric(attache, name, **labels):
    """The value of one sample of attache's /metrics (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.compile(
        r"^" + re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "")
        + r" (\S+)$", re.M)
    found = pattern.search(http_get(attache.admin_url + "/metrics"))
    return float(found.group(1)) if found else 0.0


def clients_of(attache, node_id):
    """The /debug/clients entries of node_id."""
    clients = json.loads(http_get(attache.admin_url + "/debug/clients"))
    if isinstance(clients, dict):
        clients = clients.get("clients", [])
    return [c for c in clients if c.get("node_id") == node_id]


def client_of(attache, node_id):
    mine = clients_of(attache, node_id)
    assert len(mine) == 1, f"/debug/clients lists node {node_id!r} {len(mine)} times"
    return mine[0]


class Follower:
    """A well-behaved SotW client that holds the endpoints of one service.

    `move(port)` rewrites the host file so that the service has one endpoint
    on `port` and returns how long it took until this client held exactly
    that: the figure the fault tests bound.
    """

    def __init__(self, attache, open_stream, node, services, service="witness"):
        self.attache = attache
        self.services = services
        self.service = service
        self.stream = open_stream(attache, node)
        self.stream.subscribe(ENDPOINT, [service])
        self.latencies = []

    def move(self, port, timeout=10.0):
        self.services[self.service] = {"endpoints": endpoints(port)}
        started = time.monotonic()
        self.attache.write_hosts(self.services)

        def holds(response):
            held = by_name(response, ENDPOINT).get(self.service)
            return held is not None and endpoint_ports(held) == [port]

        self.stream.recv_until(lambda r: r.type_url == ENDPOINT and holds(r),
                               timeout=timeout)
        latency = time.monotonic() - started
        self.latencies.append(latency)
        return latency

    def assert_prompt(self, what):
        assert self.latencies, "the follower saw no change"
        slowest = max(self.latencies)
        assert slowest < PROMPT, (
            f"while {what}, a well-behaved client waited {slowest:.2f} s for a change "
            f"(all: {[round(x, 3) for x in self.latencies]})")


class RawCall:
    """One bidirectional gRPC call whose messages are raw bytes."""

    def __init__(self, address, method=SOTW_METHOD, options=()):
        self.channel = grpc.insecure_channel(address, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE), *options])
        self._requests = queue.Queue()
        self.responses = queue.Queue()
        self.status = None
        self._done = threading.Event()
        call = self.channel.stream_stream(method, request_serializer=None,
                                          response_deserializer=None)
        self._call = call(self._iterate())
        threading.Thread(target=self._read, daemon=True).start()

    def _iterate(self):
        while True:
            message = self._requests.get()
            if message is None:
                return
            yield message

    def _read(self):
        try:
            for message in self._call:
                self.responses.put(message)
            self.status = (grpc.StatusCode.OK, "")
        except grpc.RpcError as error:
            self.status = (error.code(), error.details())
        self._done.set()

    def send(self, message):
        self._requests.put(bytes(message))

    def recv(self, timeout=5.0):
        return self.responses.get(timeout=timeout)

    def wait_closed(self, timeout=10.0):
        """(code, details) once the server ended the call."""
        assert self._done.wait(timeout), f"the call stayed open for {timeout} s"
        return self.status

    def is_open(self):
        return not self._done.is_set()

    def close(self):
        self._requests.put(None)
        self._call.cancel()
        self.channel.close()


# --- a client that writes and never reads ------------------------------------------
def _frame(kind, flags, stream_id, payload=b""):
    return (len(payload).to_bytes(3, "big") + bytes([kind, flags])
            + stream_id.to_bytes(4, "big") + payload)


def _literal(name, value):
    # HPACK literal header field without indexing, new name, no Huffman.
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


class BlindClient:
    """An HTTP/2 client written by hand that sends one gRPC call's messages and
    never reads its socket.

    With the default window, attache can write at most 64 KiB to it (the
    HTTP/2 flow-control window fills). With `open_window`, it grants 2 GiB
    of HTTP/2 window up front, so what stops attache is TCP: its send buffer
    and the client's receive buffer fill, as with a frozen process."""

    def __init__(self, port, method=SOTW_METHOD, open_window=False):
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive buffer: the kernel takes little on its behalf.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        headers = b"".join(_literal(k, v) for k, v in (
            (":method", "POST"), (":scheme", "http"), (":path", method),
            (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
            ("te", "trailers")))
        settings, window_update = b"", b""
        if open_window:
            most = 2**31 - 1
            settings = (4).to_bytes(2, "big") + most.to_bytes(4, "big")  # INITIAL_WINDOW_SIZE
            window_update = _frame(8, 0, 0, (most - 65535).to_bytes(4, "big"))  # connection
        self.sock.sendall(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
            + _frame(4, 0, 0, settings)      # SETTINGS
            + _frame(4, 1, 0)                # blind ACK of the server's SETTINGS
            + window_update
            + _frame(1, 4, 1, headers))      # HEADERS, END_HEADERS, stream 1

    def send(self, message):
        body = b"\x00" + len(message).to_bytes(4, "big") + message
        # The server's SETTINGS_MAX_FRAME_SIZE is at least the default, 16 KiB.
        for start in range(0, len(body), 16384):
            self.sock.sendall(_frame(0, 0, 1, body[start:start + 16384]))

    def close(self):
        self.sock.close()


def kill(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


__all__ = ["BlindClient", "DELTA_METHOD", "Follower", "MIB", "PROMPT", "RawCall", "SOTW_METHOD",
           "big_catalog", "client_of", "clients_of", "cpu_seconds", "kill", "metric",
           "rss_kib", "wait_until", "write_json_hosts"]
