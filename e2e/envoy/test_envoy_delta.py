"""A real Envoy on incremental (delta) ADS: `ads_config.api_type: DELTA_GRPC`,
CDS over ADS (and EDS through it), against attache serving a host file.

Envoy's bootstrap is the one of test_envoy.py (a static listener routing "/"
to the dynamic cluster "echo") with only the ADS flavour changed. Some tests
put DeltaWire, a recording gRPC proxy, between Envoy and attache to assert
on the DeltaDiscoveryRequests and DeltaDiscoveryResponses themselves; the
others let Envoy talk to attache directly.

1. clusters, endpoints and real traffic over delta; a host file edit moves it;
2. attache restarts: Envoy reconnects with initial_resource_versions and is
   sent only what it does not hold (nothing, a catch-up, a changed cluster);
3. removals: services (removed_resources) and endpoints (assignments);
4. a run of changes without a NACK, counted on both sides;
5. TTLs and heartbeats."""
import itertools
import signal
import threading
import time
import uuid
from concurrent import futures

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2

from peers.envoy import Envoy
from peers.grpc_peers import CLUSTER, ENDPOINT, clients_of_node
from peers.util import Fatal, endpoints, tail, wait_until
# The helpers (and the request_loops fixture) of the state-of-the-world tests
# work for any Envoy; test_envoy.py is importable by name because pytest puts
# this folder on sys.path.
from test_envoy import (address, assert_no_nack, failures, rejected_updates,  # noqa: F401
                        request_loops, served_by, wait_for_endpoints, wait_for_traffic_to)

SHORT = {CLUSTER: "CDS", ENDPOINT: "EDS"}
ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
DELTA_METHOD = "DeltaAggregatedResources"


# --- a recording delta ADS proxy --------------------------------------------------
class DeltaWire:
    """A gRPC proxy on 127.0.0.1 for DeltaAggregatedResources: every stream
    Envoy opens is relayed on a fresh connection to attache (`target`), and
    every request and response is recorded, decoded with the official schema,
    in one global order. When attache's side of a stream ends (attache
    stopped), the proxy ends Envoy's side with the same status, so Envoy
    reconnects exactly as it would to attache itself; while attache is down
    each new stream fails at once with UNAVAILABLE."""

    def __init__(self, target):
        self.target = target
        self.lock = threading.Lock()
        # (seq, stream id, "req" | "resp" | "end", DeltaDiscoveryRequest |
        #  DeltaDiscoveryResponse | status text)
        self.events = []
        self._seq = itertools.count(1)
        self._stream_ids = itertools.count(1)
        handler = grpc.method_handlers_generic_handler(ADS_SERVICE, {
            DELTA_METHOD: grpc.stream_stream_rpc_method_handler(
                self._relay,
                request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                response_serializer=discovery_pb2.DeltaDiscoveryResponse.SerializeToString),
        })
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16),
                                  handlers=(handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("could not bind the delta ADS proxy on 127.0.0.1")
        self.server.start()

    def _record(self, stream, kind, item):
        with self.lock:
            self.events.append((next(self._seq), stream, kind, item))

    def _relay(self, requests, context):
        stream = next(self._stream_ids)
        channel = grpc.insecure_channel(self.target)  # a new connection per stream

        def upstream_requests():
            try:
                for request in requests:
                    self._record(stream, "req", request)
                    yield request
            except grpc.RpcError:
                return  # Envoy's side ended; call.cancel() ends attache's side

        call = channel.stream_stream(
            f"/{ADS_SERVICE}/{DELTA_METHOD}",
            request_serializer=discovery_pb2.DeltaDiscoveryRequest.SerializeToString,
            response_deserializer=discovery_pb2.DeltaDiscoveryResponse.FromString,
        )(upstream_requests())
        context.add_callback(call.cancel)  # Envoy went away: so does the upstream stream
        try:
            for response in call:
                self._record(stream, "resp", response)
                yield response
            self._record(stream, "end", "OK")
        except grpc.RpcError as error:
            self._record(stream, "end", f"{error.code()}: {error.details()}")
            if context.is_active():
                code = error.code()
                if code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.OK):
                    code = grpc.StatusCode.UNAVAILABLE
                context.abort(code, f"upstream: {error.details()}")
        finally:
            channel.close()

    def stop(self):
        self.server.stop(grace=None).wait(5)

    # -- reading --------------------------------------------------------------------
    def mark(self):
        """A position in the recording: events after it are `since=mark`."""
        with self.lock:
            return self.events[-1][0] if self.events else 0

    def select(self, since=0, kind=None, type_url=None, stream=None):
        with self.lock:
            events = list(self.events)
        return [e for e in events if e[0] > since and (kind is None or e[2] == kind)
                and (stream is None or e[1] == stream)
                and (type_url is None or (e[2] != "end" and e[3].type_url == type_url))]

    def responses(self, since=0, type_url=None):
        return [e[3] for e in self.select(since, "resp", type_url)]

    def streams(self, since=0):
        return sorted({e[1] for e in self.select(since)})

    def ended(self, stream):
        return bool(self.select(kind="end", stream=stream))

    def first_request(self, stream, type_url):
        found = self.select(kind="req", type_url=type_url, stream=stream)
        return found[0][3] if found else None

    def held(self):
        """{type_url: {name: version}}: what Envoy holds according to the wire
        (resources received, minus removals and its own unsubscriptions)."""
        held = {CLUSTER: {}, ENDPOINT: {}}
        for _, _, kind, message in self.select():
            if kind == "resp":
                of = held.setdefault(message.type_url, {})
                for resource in message.resources:
                    of[resource.name] = resource.version
                for name in message.removed_resources:
                    of.pop(name, None)
            elif kind == "req":
                for name in message.resource_names_unsubscribe:
                    held.setdefault(message.type_url, {}).pop(name, None)
        return held

    def transcript(self, since=0):
        """The recording as text, for failure messages."""
        lines = []
        for seq, stream, kind, item in self.select(since):
            if kind == "end":
                lines.append(f"#{seq} s{stream} END {item}")
            elif kind == "req":
                lines.append(
                    f"#{seq} s{stream} REQ  {SHORT.get(item.type_url, item.type_url)} "
                    f"nonce={item.response_nonce!r} sub={list(item.resource_names_subscribe)} "
                    f"unsub={list(item.resource_names_unsubscribe)} "
                    f"initial={dict(item.initial_resource_versions)}"
                    + (f" NACK={item.error_detail.message!r}" if item.HasField("error_detail")
                       else ""))
            else:
                lines.append(
                    f"#{seq} s{stream} RESP {SHORT.get(item.type_url, item.type_url)} "
                    f"nonce={item.nonce!r} "
                    f"resources={[(r.name, r.version) for r in item.resources]} "
                    f"removed={list(item.removed_resources)}")
        return "\n".join(lines)


def received(responses):
    """[(type short name, name, version)] of every resource in responses."""
    return [(SHORT[r.type_url], res.name, res.version) for r in responses for res in r.resources]


def removed(responses):
    """[(type short name, name)] of every removed_resources entry."""
    return [(SHORT[r.type_url], name) for r in responses for name in r.removed_resources]


# --- fixtures ----------------------------------------------------------------------
@pytest.fixture
def delta_envoy(tmp_path, request):
    """make(xds_port, service="echo", client_features=()) -> a started, ready
    Envoy on delta ADS."""
    made = []

    def make(xds_port, service="echo", client_features=()):
        envoy = Envoy(tmp_path / f"delta-envoy{len(made)}", xds_port, service,
                      node_id=f"envoy-delta-{uuid.uuid4().hex[:10]}", api_type="DELTA_GRPC",
                      client_features=client_features)
        made.append(envoy)
        return envoy.start()

    yield make
    for envoy in made:
        envoy.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for envoy in made:
            print(f"--- tail of {envoy.log_path} ---\n{tail(envoy.log_path, 60)}")
        for log in sorted(tmp_path.glob("attache*/attache.log")):
            print(f"--- tail of {log} ---\n{tail(log, 60)}")


@pytest.fixture
def wire_factory(request):
    """make(attache) -> a DeltaWire in front of attache's xDS port."""
    made = []

    def make(attache):
        made.append(DeltaWire(attache.xds_address))
        return made[-1]

    yield make
    for wire in made:
        wire.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for wire in made:
            print(f"--- delta ADS as recorded between envoy and attache ---\n"
                  f"{wire.transcript()[-12000:]}")


# --- helpers -----------------------------------------------------------------------
COUNTERS = ("cluster_manager.cluster_added", "cluster_manager.cluster_modified",
            "cluster_manager.cluster_removed", "cluster_manager.cds.update_success",
            "cluster_manager.cds.update_rejected")


def counters(envoy, clusters=()):
    """The CDS counters, and update_success / update_rejected of each cluster's EDS."""
    stats = envoy.stats()
    names = list(COUNTERS)
    for cluster in clusters:
        names += [f"cluster.{cluster}.update_success", f"cluster.{cluster}.update_rejected"]
    return {name: stats.get(name) for name in names}


def changed(before, after):
    return {key: (before[key], after[key]) for key in before if before[key] != after.get(key)}


def attache_view(attache, envoy):
    """attache's /debug/clients entry for this Envoy: exactly one, on delta."""
    seen = clients_of_node(attache.admin_url, envoy.node_id)
    assert len(seen) == 1, f"attache lists {len(seen)} streams of {envoy.node_id}: {seen}"
    assert seen[0]["protocol"] == "delta", seen[0]
    return seen[0]


def settled(attache, envoy):
    """Both types requested, answered at least once, and nothing awaiting an ACK."""
    seen = clients_of_node(attache.admin_url, envoy.node_id)
    if len(seen) != 1:
        return False
    types = seen[0]["types"]
    return all(t in types and types[t]["response_count"] > 0 and not types[t]["awaiting_ack"]
               for t in (CLUSTER, ENDPOINT)) and seen[0]


def wait_settled(attache, envoy, timeout=15):
    return wait_until(lambda: settled(attache, envoy), timeout=timeout,
                      what="envoy to have ACKed every delta response of attache")


def cluster_versions(envoy):
    """{cluster name: version_info} of Envoy's dynamic clusters (the Resource version)."""
    return {name: entry["version_info"] for name, entry in envoy.dynamic_clusters().items()}


def assert_no_rejections(envoy):
    rejected = rejected_updates(envoy)
    assert rejected.get("cluster_manager.cds.update_rejected") == 0, rejected
    assert all(value == 0 for value in rejected.values()), rejected


# --- 1. clusters, endpoints and traffic over delta -------------------------------
def test_delta_envoy_routes_traffic_and_follows_host_file(attache_factory, delta_envoy,
                                                          backend_factory, request_loops):
    """Envoy on DELTA_GRPC gets both clusters and their endpoints, real
    requests reach the backend, and an endpoint edit in the host file moves
    traffic with no failed request. The edit reaches Envoy as one EDS update
    for echo alone: no CDS update, and billing's assignment is not re-sent."""
    old, new = backend_factory("echo-old"), backend_factory("echo-new")
    billing = backend_factory("billing")
    attache = attache_factory({"echo": {"endpoints": endpoints(old.port)},
                               "billing": {"connect_timeout": "300ms",
                                           "endpoints": endpoints(billing.port)}})
    envoy = delta_envoy(attache.xds_port)

    clusters = wait_until(lambda: (lambda d: {"echo", "billing"} <= d.keys() and d)(
        envoy.dynamic_clusters()), what="clusters echo and billing in envoy")
    assert sorted(clusters) == ["billing", "echo"], sorted(clusters)
    for name, entry in clusters.items():
        assert entry["cluster"]["type"] == "EDS", entry
        assert "ads" in entry["cluster"]["eds_cluster_config"]["eds_config"], entry
        assert entry["version_info"], entry
    assert clusters["billing"]["cluster"]["connect_timeout"] == "0.300s", clusters["billing"]
    wait_for_endpoints(envoy, "echo", [old])
    wait_for_endpoints(envoy, "billing", [billing])
    wait_for_traffic_to(envoy, old)

    # Envoy really is on the incremental protocol: attache says so, and the
    # clusters came from a wildcard subscription, the assignments by name.
    view = wait_settled(attache, envoy)
    assert view["protocol"] == "delta", view
    assert view["types"][CLUSTER]["wildcard"] is True, view
    assert sorted(view["types"][ENDPOINT]["subscribed"]) == ["billing", "echo"], view
    assert envoy.stat("control_plane.connected_state") == 1

    before = counters(envoy, ("echo", "billing"))
    before_view = view["types"]
    loop = request_loops(envoy)
    loop.wait_for(lambda results: len(results) >= 20, what="20 requests before the edit")
    edited = time.monotonic()
    attache.write_hosts({"echo": {"endpoints": endpoints(new.port)},
                         "billing": {"connect_timeout": "300ms",
                                     "endpoints": endpoints(billing.port)}})

    def first_from_new(results):
        index = next((i for i, r in enumerate(results) if r[1] == new.name), None)
        return None if index is None else (index,)
    (first_new,) = loop.wait_for(first_from_new, timeout=20,
                                 what="a request through envoy to reach the new backend")
    moved_after = time.monotonic() - edited
    loop.wait_for(lambda results: len(results) >= first_new + 30,
                  what="30 requests after the switch")
    results = loop.stop()
    assert not failures(results, {old.name, new.name}), failures(results, {old.name, new.name})[:10]
    assert all(body == new.name for _, body in results[first_new:]), results[first_new:][:20]
    wait_for_endpoints(envoy, "echo", [new])
    assert set(envoy.cluster_hosts("echo")) == {address(new)}
    assert envoy.endpoint_addresses("billing") == [address(billing)]

    view = wait_settled(attache, envoy)["types"]
    after = counters(envoy, ("echo", "billing"))
    # One EDS response (echo's new assignment), no CDS response ...
    assert view[ENDPOINT]["response_count"] == before_view[ENDPOINT]["response_count"] + 1, view
    assert view[CLUSTER]["response_count"] == before_view[CLUSTER]["response_count"], view
    # ... which Envoy applied to echo only.
    assert after["cluster.echo.update_success"] == before["cluster.echo.update_success"] + 1
    assert changed(before, after) == {
        "cluster.echo.update_success": (before["cluster.echo.update_success"],
                                        after["cluster.echo.update_success"])}, \
        changed(before, after)
    assert_no_nack(envoy, attache, clusters=("echo", "billing"), require_attache_view=True)
    print(f"delta: endpoint edit to traffic on the new backend: {moved_after * 1000:.0f} ms")


# --- 2. restart: Envoy reconnects with what it holds, and gets nothing again -------
def wait_reconnected(wire, attache, envoy, streams_before, timeout=30):
    """Waits until Envoy is on a new stream that attache has registered with
    both subscriptions; returns that stream's id."""
    def check():
        if attache.proc.poll() is not None:
            raise Fatal(f"attache exited:\n{attache.log()[-3000:]}")
        new = [s for s in wire.streams() if s not in streams_before and not wire.ended(s)]
        if not new or envoy.stat("control_plane.connected_state") != 1:
            return None
        stream = new[-1]
        if not (wire.first_request(stream, CLUSTER) and wire.first_request(stream, ENDPOINT)):
            return None
        seen = clients_of_node(attache.admin_url, envoy.node_id)
        types = seen[0]["types"] if len(seen) == 1 else {}
        return CLUSTER in types and ENDPOINT in types and stream
    return wait_until(check, timeout=timeout, interval=0.05,
                      what="envoy to reconnect to the restarted attache on a new delta stream")


def assert_reconnect_requests(wire, streams, held, eds_names):
    """Every new stream's first CDS and EDS requests list exactly what Envoy
    held (initial_resource_versions) and carry no nonce."""
    checked = 0
    for stream in streams:
        cds = wire.first_request(stream, CLUSTER)
        eds = wire.first_request(stream, ENDPOINT)
        if cds is not None:
            checked += 1
            assert cds.response_nonce == "", cds
            assert dict(cds.initial_resource_versions) == held[CLUSTER], (
                stream, dict(cds.initial_resource_versions), held[CLUSTER])
            assert list(cds.resource_names_subscribe) in ([], ["*"]), cds  # wildcard
        if eds is not None:
            assert eds.response_nonce == "", eds
            assert dict(eds.initial_resource_versions) == held[ENDPOINT], (
                stream, dict(eds.initial_resource_versions), held[ENDPOINT])
            assert sorted(eds.resource_names_subscribe) == sorted(eds_names), eds
    assert checked, "no reconnect request was recorded"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restart_sends_envoy_nothing_it_holds(attache_factory, delta_envoy, wire_factory,
                                              backend_factory, request_loops, sig):
    """attache stops (SIGTERM or SIGKILL) and starts again on the same port with
    the same host file. Envoy reconnects with initial_resource_versions equal
    to what it holds, and attache sends nothing back: no response at all until
    a new service appears, and then only that service. Envoy's cluster
    manager adds, modifies and removes nothing, no assignment is re-applied,
    nothing is rejected, and traffic never fails."""
    echo, billing, barrier = (backend_factory("echo"), backend_factory("billing"),
                              backend_factory("barrier"))
    services = {"echo": {"endpoints": endpoints(echo.port)},
                "billing": {"lb_policy": "LEAST_REQUEST", "endpoints": endpoints(billing.port)}}
    attache = attache_factory(services)
    wire = wire_factory(attache)
    envoy = delta_envoy(wire.port)
    wait_for_endpoints(envoy, "echo", [echo])
    wait_for_endpoints(envoy, "billing", [billing])
    wait_for_traffic_to(envoy, echo)
    wait_settled(attache, envoy)

    # What Envoy holds, from the wire and from Envoy itself: the same.
    held = wire.held()
    assert sorted(held[CLUSTER]) == ["billing", "echo"], held
    assert sorted(held[ENDPOINT]) == ["billing", "echo"], held
    assert cluster_versions(envoy) == held[CLUSTER], (cluster_versions(envoy), held)
    streams_before = wire.streams()
    assert len(streams_before) == 1, wire.transcript()
    before = counters(envoy, ("echo", "billing"))
    assert before["cluster_manager.cluster_added"] >= 2, before
    mark = wire.mark()

    loop = request_loops(envoy)
    loop.wait_for(lambda results: len(results) >= 10, what="10 requests before the restart")
    xds_port, admin_port = attache.xds_port, attache.admin_port
    attache.stop(sig)
    stopped = time.monotonic()
    assert wire.ended(streams_before[0]) or wait_until(
        lambda: wire.ended(streams_before[0]), what="the old stream to end")
    attache.start(xds_port, admin_port)
    stream = wait_reconnected(wire, attache, envoy, streams_before)
    reconnected_after = time.monotonic() - stopped
    new_streams = [s for s in wire.streams(mark) if s not in streams_before]

    # The reconnect requests carried what Envoy held.
    assert_reconnect_requests(wire, new_streams, held, ["billing", "echo"])
    # attache took them as such: it knows Envoy holds both types' resources.
    view = attache_view(attache, envoy)["types"]
    assert view[CLUSTER]["wildcard"] is True, view
    assert sorted(view[ENDPOINT]["subscribed"]) == ["billing", "echo"], view

    # A barrier: a new service. Its cluster and assignment are all that
    # attache may send on the new stream.
    services["barrier"] = {"endpoints": endpoints(barrier.port)}
    attache.write_hosts(services)
    wait_until(lambda: "barrier" in envoy.dynamic_clusters(), what="cluster barrier in envoy")
    wait_for_endpoints(envoy, "barrier", [barrier])
    settled_view = wait_settled(attache, envoy)
    loop.wait_for(lambda results: len(results) >= 30, what="30 requests in all")
    results = loop.stop()

    after_restart = wire.responses(since=mark)
    got = received(after_restart)
    again = [entry for entry in got
             if held[{"CDS": CLUSTER, "EDS": ENDPOINT}[entry[0]]].get(entry[1]) == entry[2]]
    assert not again, f"attache re-sent what envoy held: {again}\n{wire.transcript(mark)}"
    assert sorted((kind, name) for kind, name, _ in got) == [("CDS", "barrier"),
                                                             ("EDS", "barrier")], \
        wire.transcript(mark)
    assert not removed(after_restart), wire.transcript(mark)
    # Exactly one response per type since the restart (the barrier's).
    assert len(after_restart) == 2, wire.transcript(mark)
    assert all(r.nonce for r in after_restart), wire.transcript(mark)
    assert [e[1] for e in wire.select(mark, "resp")] == [stream, stream], wire.transcript(mark)
    # attache's own count for the new stream agrees.
    assert settled_view["types"][CLUSTER]["response_count"] == 1, settled_view
    assert settled_view["types"][ENDPOINT]["response_count"] == 1, settled_view

    # Envoy: nothing added but the barrier, nothing modified or removed, echo's
    # and billing's assignments not re-applied, nothing rejected.
    after = counters(envoy, ("echo", "billing"))
    assert changed(before, after) == {
        "cluster_manager.cluster_added": (before["cluster_manager.cluster_added"],
                                          before["cluster_manager.cluster_added"] + 1),
        "cluster_manager.cds.update_success": (before["cluster_manager.cds.update_success"],
                                               before["cluster_manager.cds.update_success"] + 1),
    }, changed(before, after)
    assert cluster_versions(envoy) == dict(held[CLUSTER], barrier=wire.held()[CLUSTER]["barrier"])
    assert not failures(results, {echo.name}), failures(results, {echo.name})[:10]
    assert billing.requests == 0 and barrier.requests == 0
    assert_no_rejections(envoy)
    assert_no_nack(envoy, attache, clusters=("echo", "billing", "barrier"),
                   require_attache_view=True)
    print(f"delta restart ({signal.Signals(sig).name}): stop to reconnect registered "
          f"{reconnected_after * 1000:.0f} ms; responses after reconnect: "
          f"{len(after_restart)} (barrier only)")


def test_reconnect_catches_up_only_on_what_changed(attache_factory, delta_envoy, wire_factory,
                                                   backend_factory):
    """The host file changes while attache is down (echo moves to another
    backend, billing goes away, fresh appears). After the reconnect Envoy gets
    exactly the difference: echo's new assignment (not echo's unchanged
    cluster), fresh's cluster and assignment, and billing's removal."""
    old, new = backend_factory("echo-old"), backend_factory("echo-new")
    billing, fresh = backend_factory("billing"), backend_factory("fresh")
    attache = attache_factory({"echo": {"endpoints": endpoints(old.port)},
                               "billing": {"endpoints": endpoints(billing.port)}})
    wire = wire_factory(attache)
    envoy = delta_envoy(wire.port)
    wait_for_endpoints(envoy, "echo", [old])
    wait_for_endpoints(envoy, "billing", [billing])
    wait_for_traffic_to(envoy, old)
    wait_settled(attache, envoy)
    held = wire.held()
    streams_before = wire.streams()
    before = counters(envoy, ("echo",))
    mark = wire.mark()

    xds_port, admin_port = attache.xds_port, attache.admin_port
    attache.stop(signal.SIGKILL)
    attache.write_hosts({"echo": {"endpoints": endpoints(new.port)},
                         "fresh": {"endpoints": endpoints(fresh.port)}})
    attache.start(xds_port, admin_port)

    wait_until(lambda: "billing" not in envoy.dynamic_clusters()
               and "fresh" in envoy.dynamic_clusters(), timeout=30,
               what="envoy to drop billing and add fresh")
    wait_for_endpoints(envoy, "echo", [new])
    wait_for_endpoints(envoy, "fresh", [fresh])
    wait_for_traffic_to(envoy, new)
    wait_settled(attache, envoy)

    new_streams = [s for s in wire.streams(mark) if s not in streams_before]
    assert_reconnect_requests(wire, new_streams, held, ["billing", "echo"])
    responses = wire.responses(since=mark)
    got = received(responses)
    again = [entry for entry in got
             if held[{"CDS": CLUSTER, "EDS": ENDPOINT}[entry[0]]].get(entry[1]) == entry[2]]
    assert not again, f"attache re-sent what envoy held: {again}\n{wire.transcript(mark)}"
    assert sorted((kind, name) for kind, name, _ in got) == [
        ("CDS", "fresh"), ("EDS", "echo"), ("EDS", "fresh")], wire.transcript(mark)
    assert ("CDS", "billing") in removed(responses), wire.transcript(mark)
    assert set(removed(responses)) <= {("CDS", "billing"), ("EDS", "billing")}, \
        wire.transcript(mark)
    assert envoy.cluster_hosts("billing") is None

    after = counters(envoy, ("echo",))
    assert after["cluster_manager.cluster_modified"] == before["cluster_manager.cluster_modified"]
    assert after["cluster_manager.cluster_added"] == before["cluster_manager.cluster_added"] + 1
    assert after["cluster_manager.cluster_removed"] == before["cluster_manager.cluster_removed"] + 1
    assert after["cluster.echo.update_success"] == before["cluster.echo.update_success"] + 1
    assert envoy.dynamic_clusters()["echo"]["version_info"] == held[CLUSTER]["echo"]
    assert_no_rejections(envoy)
    assert_no_nack(envoy, attache, clusters=("echo", "fresh"), require_attache_view=True)


def test_cluster_changed_while_down_warms_at_once_after_reconnect(attache_factory, delta_envoy,
                                                                  wire_factory, backend_factory,
                                                                  request_loops):
    """echo's cluster settings change while attache is down (its endpoints do
    not). After the reconnect attache sends echo's new Cluster; Envoy warms the
    new cluster and waits for its ClusterLoadAssignment, which attache must
    send even though Envoy listed that very assignment in its EDS
    initial_resource_versions: the CLA belongs to the old cluster, the new
    one has none until it is sent. Without it the cluster stays warming
    until Envoy's 15 s initial_fetch_timeout."""
    backend = backend_factory("echo")
    services = {"echo": {"endpoints": endpoints(backend.port)}}
    attache = attache_factory(services)
    wire = wire_factory(attache)
    envoy = delta_envoy(wire.port)
    wait_for_traffic_to(envoy, backend)
    wait_settled(attache, envoy)
    held = wire.held()
    before = counters(envoy, ("echo",))
    mark = wire.mark()

    xds_port, admin_port = attache.xds_port, attache.admin_port
    attache.stop(signal.SIGKILL)
    services["echo"]["lb_policy"] = "LEAST_REQUEST"
    attache.write_hosts(services)
    loop = request_loops(envoy)
    started = time.monotonic()
    attache.start(xds_port, admin_port)

    def warmed():
        cluster = envoy.dynamic_clusters()["echo"]["cluster"]
        return (cluster.get("lb_policy") == "LEAST_REQUEST"
                and envoy.stat("cluster_manager.warming_clusters") == 0)
    wait_until(warmed, timeout=30, what="envoy to take and warm echo's new cluster")
    warmed_after = time.monotonic() - started
    loop.wait_for(lambda results: len(results) >= 20, what="20 requests")
    results = loop.stop()

    responses = wire.responses(since=mark)
    assert ("CDS", "echo") in [(k, n) for k, n, _ in received(responses)], wire.transcript(mark)
    assert ("EDS", "echo") in [(k, n) for k, n, _ in received(responses)], (
        f"echo's cluster changed but its assignment was not sent again "
        f"(warmed after {warmed_after:.1f}s)\n{wire.transcript(mark)}")
    assert warmed_after < 5, f"echo took {warmed_after:.1f}s to warm\n{wire.transcript(mark)}"
    after = counters(envoy, ("echo",))
    assert (after["cluster_manager.cluster_modified"]
            == before["cluster_manager.cluster_modified"] + 1)
    assert envoy.endpoint_addresses("echo") == [address(backend)]
    assert held[ENDPOINT]["echo"] == wire.held()[ENDPOINT]["echo"]  # same content, sent again
    assert not failures(results, {backend.name}), failures(results, {backend.name})[:10]
    assert_no_rejections(envoy)
    assert_no_nack(envoy, attache, clusters=("echo",), require_attache_view=True)


# --- 3. removals ------------------------------------------------------------------
def test_removals_reach_envoy(attache_factory, delta_envoy, wire_factory, backend_factory):
    """A service removed from the host file leaves Envoy through
    removed_resources (and nothing else is re-sent); an endpoint removed from a
    service leaves echo's assignment and Envoy's hosts; a service with no
    endpoints left gets an empty assignment and Envoy has no host for it; a
    removed service that comes back is sent again."""
    a, b = backend_factory("echo-a"), backend_factory("echo-b")
    billing = backend_factory("billing")
    services = {"echo": {"endpoints": endpoints(a.port, b.port)},
                "billing": {"endpoints": endpoints(billing.port)}}
    attache = attache_factory(services)
    wire = wire_factory(attache)
    envoy = delta_envoy(wire.port)
    wait_for_endpoints(envoy, "echo", [a, b])
    wait_for_endpoints(envoy, "billing", [billing])
    wait_settled(attache, envoy)
    before = counters(envoy, ("echo",))

    # A whole service goes away.
    mark = wire.mark()
    del services["billing"]
    attache.write_hosts(services)
    wait_until(lambda: "billing" not in envoy.dynamic_clusters()
               and envoy.cluster_hosts("billing") is None,
               what="cluster billing to leave envoy (config_dump and /clusters)")
    wait_settled(attache, envoy)
    cds = wire.responses(since=mark, type_url=CLUSTER)
    assert [list(r.removed_resources) for r in cds] == [["billing"]], wire.transcript(mark)
    assert not received(cds), wire.transcript(mark)  # echo's cluster is not re-sent
    assert [name for kind, name, _ in received(wire.responses(since=mark))] == [], \
        wire.transcript(mark)
    assert "billing" not in envoy.endpoint_configs()
    after = counters(envoy, ("echo",))
    assert after["cluster_manager.cluster_removed"] == before["cluster_manager.cluster_removed"] + 1
    assert after["cluster_manager.cluster_modified"] == before["cluster_manager.cluster_modified"]
    assert after["cluster.echo.update_success"] == before["cluster.echo.update_success"]
    assert sorted(envoy.dynamic_clusters()) == ["echo"]

    # One endpoint goes away: echo's new assignment has only a.
    mark = wire.mark()
    services["echo"]["endpoints"] = endpoints(a.port)
    attache.write_hosts(services)
    wait_for_endpoints(envoy, "echo", [a])
    wait_until(lambda: set(envoy.cluster_hosts("echo")) == {address(a)},
               what="envoy's echo hosts to be only echo-a")
    eds = wire.responses(since=mark, type_url=ENDPOINT)
    assert [[res.name for res in r.resources] for r in eds] == [["echo"]], wire.transcript(mark)
    assert not wire.responses(since=mark, type_url=CLUSTER), wire.transcript(mark)
    served_before = b.requests
    assert [served_by(envoy) for _ in range(10)] == [a.name] * 10
    assert b.requests == served_before

    # The last endpoint goes away: an empty assignment, no host, no traffic.
    mark = wire.mark()
    services["echo"]["endpoints"] = []
    attache.write_hosts(services)
    wait_until(lambda: envoy.endpoint_addresses("echo") == [],
               what="envoy's echo assignment to be empty")
    wait_until(lambda: envoy.cluster_hosts("echo") == {}, what="envoy to have no echo host")
    eds = wire.responses(since=mark, type_url=ENDPOINT)
    assert [[res.name for res in r.resources] for r in eds] == [["echo"]], wire.transcript(mark)
    assert not removed(eds), wire.transcript(mark)  # an empty assignment, not a removal
    served_before = a.requests
    status, _ = envoy.request()
    assert status == 503, status
    assert a.requests == served_before
    assert "echo" in envoy.dynamic_clusters()

    # billing comes back: sent again, cluster and assignment.
    mark = wire.mark()
    services["billing"] = {"endpoints": endpoints(billing.port)}
    services["echo"]["endpoints"] = endpoints(b.port)
    attache.write_hosts(services)
    wait_until(lambda: "billing" in envoy.dynamic_clusters(), what="billing back in envoy")
    wait_for_endpoints(envoy, "billing", [billing])
    wait_for_endpoints(envoy, "echo", [b])
    wait_for_traffic_to(envoy, b)
    assert sorted((kind, name) for kind, name, _ in received(wire.responses(since=mark))) == [
        ("CDS", "billing"), ("EDS", "billing"), ("EDS", "echo")], wire.transcript(mark)
    after = counters(envoy, ("echo",))
    assert after["cluster_manager.cluster_added"] == before["cluster_manager.cluster_added"] + 1
    assert after["cluster_manager.cluster_modified"] == before["cluster_manager.cluster_modified"]
    assert_no_rejections(envoy)
    assert_no_nack(envoy, attache, clusters=("echo", "billing"), require_attache_view=True)


# --- 4. a NACK-free run ----------------------------------------------------------
def test_nack_free_run_of_changes(attache_factory, delta_envoy, backend_factory):
    """A run of host file changes on one delta stream: a service added, a
    cluster setting changed (Envoy warms the new cluster and needs its
    assignment again), endpoints changed, a service removed. After each step
    Envoy's CDS/EDS update_success went up where it should and only there,
    nothing was rejected, attache recorded no NACK, every response was ACKed,
    and Envoy accepted exactly as many CDS updates as attache sent."""
    a, b, billing = backend_factory("a"), backend_factory("b"), backend_factory("billing")
    services = {"echo": {"endpoints": endpoints(a.port)}}
    attache = attache_factory(services)
    envoy = delta_envoy(attache.xds_port)
    wait_for_traffic_to(envoy, a)
    wait_settled(attache, envoy)
    figures = {}

    def step(change, ready, what):
        before = counters(envoy, ("echo",))
        started = time.monotonic()
        change()
        attache.write_hosts(services)
        wait_until(ready, timeout=15, what=what)
        figures[what] = time.monotonic() - started
        view = wait_settled(attache, envoy)
        after = counters(envoy, ("echo",))
        assert_no_rejections(envoy)
        for type_url, state in view["types"].items():
            assert state["nack_count"] == 0, (type_url, state)
            assert state["ack_count"] == state["response_count"], (type_url, state)
        # Every CDS response attache sent on this stream was applied by Envoy.
        assert (after["cluster_manager.cds.update_success"]
                == view["types"][CLUSTER]["response_count"]), (after, view)
        return before, after

    # A service is added: one CDS update.
    before, after = step(lambda: services.update(billing={"endpoints": endpoints(billing.port)}),
                         lambda: envoy.endpoint_addresses("billing") == [address(billing)],
                         "billing added")
    assert after["cluster_manager.cds.update_success"] == before[
        "cluster_manager.cds.update_success"] + 1
    assert after["cluster_manager.cluster_added"] == before["cluster_manager.cluster_added"] + 1
    assert after["cluster.echo.update_success"] == before["cluster.echo.update_success"]

    # A cluster setting changes: Envoy warms echo and needs its assignment
    # again, well before its 15 s initial fetch timeout.
    def lb_changed():
        cluster = envoy.dynamic_clusters()["echo"]["cluster"]
        return (cluster.get("lb_policy") == "LEAST_REQUEST"
                and envoy.stat("cluster_manager.warming_clusters") == 0)
    before, after = step(lambda: services["echo"].update(lb_policy="LEAST_REQUEST"),
                         lb_changed, "echo cluster changed and warmed")
    assert figures["echo cluster changed and warmed"] < 5, figures
    assert after["cluster_manager.cluster_modified"] == before[
        "cluster_manager.cluster_modified"] + 1
    assert after["cluster_manager.cds.update_success"] == before[
        "cluster_manager.cds.update_success"] + 1
    assert after["cluster.echo.update_success"] > before["cluster.echo.update_success"]
    assert envoy.endpoint_addresses("echo") == [address(a)]
    wait_for_traffic_to(envoy, a)

    # Endpoints change: EDS only.
    before, after = step(lambda: services["echo"].update(endpoints=endpoints(a.port, b.port)),
                         lambda: envoy.endpoint_addresses("echo") == sorted(
                             [address(a), address(b)]), "echo endpoints changed")
    assert after["cluster.echo.update_success"] == before["cluster.echo.update_success"] + 1
    assert after["cluster_manager.cds.update_success"] == before[
        "cluster_manager.cds.update_success"]
    seen = set()
    wait_until(lambda: seen.add(served_by(envoy)) or {a.name, b.name} <= seen, timeout=15,
               what="requests to reach a and b")

    # A service is removed: one CDS update.
    before, after = step(lambda: services.pop("billing"),
                         lambda: "billing" not in envoy.dynamic_clusters(), "billing removed")
    assert after["cluster_manager.cluster_removed"] == before["cluster_manager.cluster_removed"] + 1
    assert after["cluster_manager.cds.update_success"] == before[
        "cluster_manager.cds.update_success"] + 1
    assert after["cluster.echo.update_success"] == before["cluster.echo.update_success"]

    assert envoy.stat("control_plane.connected_state") == 1
    assert_no_nack(envoy, attache, clusters=("echo",), require_attache_view=True)
    print("delta step times: " + ", ".join(f"{k}: {v * 1000:.0f} ms" for k, v in figures.items()))



# --- 5. TTLs and heartbeats ---------------------------------------------------------
TTL_FEATURE = "xds.config.supports-resource-ttl"


def heartbeats(responses):
    """The responses that are heartbeats: resources with name and version, no body."""
    return [r for r in responses
            if r.resources and not any(res.HasField("resource") for res in r.resources)]


def test_ttl_heartbeats_keep_envoy_stable_until_attache_is_gone(attache_factory, delta_envoy,
                                                                wire_factory, backend_factory):
    """With xds.resource_ttl, a delta Envoy that lists the TTL client feature
    gets every Resource with its ttl and then heartbeats (no body) for what it
    holds. Envoy takes them as heartbeats: over several TTLs nothing expires,
    nothing is re-applied or rejected, and traffic flows. Once attache is
    gone (SIGKILL) the TTL runs out and Envoy drops the cluster, which shows
    the TTL was in force all along."""
    backend = backend_factory("echo")
    attache = attache_factory({"echo": {"endpoints": endpoints(backend.port)}},
                              {"xds": {"listen": "127.0.0.1:0", "resource_ttl": "1s",
                                       "heartbeat": "250ms"}})
    wire = wire_factory(attache)
    envoy = delta_envoy(wire.port, client_features=[TTL_FEATURE])
    wait_for_traffic_to(envoy, backend)
    assert attache_view(attache, envoy)["ttl_ms"] == 1000
    first = [r for r in wire.responses() if r not in heartbeats(wire.responses())]
    assert {SHORT[r.type_url] for r in first} == {"CDS", "EDS"}, wire.transcript()
    for response in first:
        for resource in response.resources:
            assert resource.ttl.ToMilliseconds() == 1000, response
    before = counters(envoy, ("echo",))
    last_updated = envoy.dynamic_clusters()["echo"]["last_updated"]
    mark = wire.mark()
    started = time.monotonic()

    # Heartbeats for both types, for longer than three TTLs.
    def three_ttls_of_heartbeats():
        beats = heartbeats(wire.responses(since=mark))
        kinds = {SHORT[r.type_url] for r in beats}
        return kinds == {"CDS", "EDS"} and time.monotonic() - started > 3.2 and beats
    beats = wait_until(three_ttls_of_heartbeats, timeout=15, interval=0.1,
                       what="heartbeats over more than three TTLs")
    window = time.monotonic() - started
    assert len(beats) >= 8, wire.transcript(mark)
    assert all(res.ttl.ToMilliseconds() == 1000 for r in beats for res in r.resources)
    # Nothing but heartbeats, all ACKed; Envoy expired, re-applied and rejected nothing.
    assert len(heartbeats(wire.responses(since=mark))) == len(wire.responses(since=mark)), \
        wire.transcript(mark)
    view = wait_settled(attache, envoy)
    assert all(state["nack_count"] == 0 for state in view["types"].values()), view
    # (Envoy counts a CDS heartbeat as a successful, empty CDS update; nothing
    # else may move.)
    moved = changed(before, counters(envoy, ("echo",)))
    moved.pop("cluster_manager.cds.update_success", None)
    assert not moved, moved
    assert envoy.dynamic_clusters()["echo"]["last_updated"] == last_updated
    assert "echo" in envoy.dynamic_clusters()
    assert envoy.endpoint_addresses("echo") == [address(backend)]
    assert served_by(envoy) == backend.name
    assert_no_rejections(envoy)

    attache.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: "echo" not in envoy.dynamic_clusters(), timeout=10,
               what="envoy to drop echo once its TTL ran out")
    expired_after = time.monotonic() - killed
    assert envoy.stat("cluster_manager.cluster_removed") == before[
        "cluster_manager.cluster_removed"] + 1
    print(f"delta TTL 1s: {len(beats)} heartbeats in {window:.1f}s; "
          f"echo expired {expired_after * 1000:.0f} ms after attache was killed")
