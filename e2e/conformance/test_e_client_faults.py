"""Hostile and faulty xDS clients (issue 7): a reconnect storm, a client that
never reads, a client that NACKs everything, malformed and oversized requests.

Each test keeps a well-behaved client (client_faults_support.Follower) next to
the faulty one and asserts that it got every change promptly, and that the
faulty client got what the protocol says it must, nothing lost and nothing
sent twice.
"""
import json
import os
import pathlib
import subprocess
import threading
import time

import grpc
import pytest

from ads_client import CLUSTER, ENDPOINT, NoResponse, by_name, envoy_node
from client_faults_support import (DELTA_METHOD, MIB, PROMPT, SOTW_METHOD, BlindClient,
                                   Follower, RawCall, big_catalog, client_of, clients_of,
                                   cpu_seconds, kill, metric, rss_kib, wait_until,
                                   write_json_hosts)
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2
from support import catalog, endpoint_ports, endpoints, http_get

CACHE = pathlib.Path(os.environ.get("ATTACHE_CACHE", os.path.expanduser("~/.cache/attache")))
XDSLOAD = CACHE / "bin" / "xdsload"
SANITIZED = bool(os.environ.get("ATTACHE_SANITIZED"))  # set by scripts/sanitize_e2e.sh
# How long a test waits for one answer: a TSan build takes over 10 s to
# answer a subscription to 100,000 names that a release build answers at once.
ANSWER_WAIT = 60 if SANITIZED else 10

# attache's limits (src/xds/server/stream_types.h, docs/reliability.md); the
# tests probe just past them.
MAX_SUBSCRIBED_NAMES = 200_000
MAX_RECEIVE_BYTES = 16 * MIB
MAX_NODE_BYTES = 1 * MIB


def witness_catalog(*extra):
    return catalog("alpha", "beta", "witness", *extra)


# --- 3: a client that NACKs everything ------------------------------------------------
def test_e3_nack_loop_is_not_answered_with_the_same_bytes(attache_factory, xds):
    """A client NACKs every response at once and keeps repeating its NACK for
    seconds: attache sends nothing again until the catalog changes, spends
    little CPU on it, counts each real NACK once, and the client gets the new
    version once there is one. A well-behaved client is not slowed down."""
    services = witness_catalog()
    attache = attache_factory(services)
    follower = Follower(attache, xds, envoy_node("follower"), services)
    nacks_before = {t: metric(attache, "attache_xds_nacks_total", type=t)
                    for t in ("cds", "eds")}

    nacker = xds(attache, envoy_node("nacker"))
    nacker.send(CLUSTER, [])
    last = {CLUSTER: nacker.recv(CLUSTER)}
    nacker.nack(last[CLUSTER], "cluster rejected")
    nacker.send(ENDPOINT, ["alpha", "beta"])
    last[ENDPOINT] = nacker.recv(ENDPOINT)
    nacker.nack(last[ENDPOINT], "endpoints rejected")
    first_eds_version = last[ENDPOINT].version_info

    # The loop: repeat both NACKs as fast as the client can, NACK anything new.
    stop = threading.Event()
    sent = [0]
    got = []

    def hammer():
        while not stop.is_set():
            for type_url in (CLUSTER, ENDPOINT):
                nacker.nack(last[type_url], "still rejected")
                sent[0] += 1
            time.sleep(0.0005)

    cpu_before, wall_before = cpu_seconds(attache.proc.pid), time.monotonic()
    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        for port in (9501, 9502, 9503):
            follower.move(port)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                got.append(nacker.recv(timeout=0.2))
            except NoResponse:
                pass
    finally:
        stop.set()
        thread.join()
    cpu = cpu_seconds(attache.proc.pid) - cpu_before
    wall = time.monotonic() - wall_before

    assert sent[0] > 1000, f"the client sent only {sent[0]} NACKs"
    # The witness moved, but the nacker does not subscribe to it: nothing new.
    assert got == [], f"attache answered repeated NACKs: {[r.nonce for r in got]}"
    # Most of this CPU is gRPC's per-message work (about 70 us a request), so
    # the bound is for an optimised build; a sanitizer build of attache's own
    # code is slower by a factor the bound cannot know.
    if not SANITIZED:
        assert cpu < 0.6 * wall, (
            f"attache used {cpu:.2f} s CPU in {wall:.2f} s answering {sent[0]} NACKs")
    follower.assert_prompt("another client NACKed in a loop")
    # One NACK per rejected response, not per repeated request.
    state = client_of(attache, "nacker")["types"]
    assert state[CLUSTER]["nack_count"] == 1 and state[ENDPOINT]["nack_count"] == 1, state
    assert state[ENDPOINT]["last_nack"]["message"] == "endpoints rejected"
    assert metric(attache, "attache_xds_nacks_total", type="eds") == nacks_before["eds"] + 1
    assert metric(attache, "attache_xds_nacks_total", type="cds") == nacks_before["cds"] + 1

    # New content: the NACKing client gets it (and rejects it, too).
    services["alpha"] = {"endpoints": endpoints(9600)}
    attache.write_hosts(services)
    response = nacker.recv(ENDPOINT)
    assert response.version_info != first_eds_version
    assert endpoint_ports(by_name(response, ENDPOINT)["alpha"]) == [9600]
    nacker.nack(response, "rejected again")
    wait_until(lambda: metric(attache, "attache_xds_nacks_total", type="eds")
               == nacks_before["eds"] + 2, what="the second EDS NACK counted")
    nacker.expect_nothing(timeout=0.5)
    print(f"\nNACK loop: {sent[0]} NACKs in {wall:.1f} s, attache CPU {cpu:.2f} s, "
          f"0 responses resent; follower latencies "
          f"{[round(x * 1000) for x in follower.latencies]} ms")


# --- 4: malformed and oversized requests ------------------------------------------------
def request(type_url=CLUSTER, names=(), node=None, **fields):
    message = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names),
                                             **fields)
    message.node.CopyFrom(node if node is not None else envoy_node("abuser"))
    return message.SerializeToString()


def many_names(count, prefix="no-such-cluster-"):
    return [f"{prefix}{index:06d}" for index in range(count)]


def huge_metadata_node(size):
    node = envoy_node("abuser")
    node.metadata.fields["junk"].string_value = "x" * size
    return node


# (name, method, messages to send, how many responses they get, expected:
# None = the stream stays open and a valid request on it is still answered;
# a status code = attache ends it)
MALFORMED = [
    ("unknown-type-url", SOTW_METHOD,
     [request("type.googleapis.com/no.such.Type", ["a"])], 0, None),
    ("huge-nonce", SOTW_METHOD,
     [request(CLUSTER), request(CLUSTER, response_nonce="n" * MIB)], 1, None),
    ("huge-version-info", SOTW_METHOD,
     [request(CLUSTER, version_info="v" * MIB)], 1, None),
    ("empty-request", SOTW_METHOD, [b""], 0, grpc.StatusCode.INVALID_ARGUMENT),
    ("garbage-bytes", SOTW_METHOD, [b"\xff\xfe not a protobuf \x00\x01" * 100], 0,
     grpc.StatusCode.INVALID_ARGUMENT),
    # As many names as conformance item A19 requires attache to accept.
    ("100k-names", SOTW_METHOD, [request(ENDPOINT, many_names(100_000))], 1, None),
    ("too-many-names", SOTW_METHOD,
     [request(ENDPOINT, many_names(MAX_SUBSCRIBED_NAMES + 1))], 0,
     grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("huge-node-metadata", SOTW_METHOD,
     [request(CLUSTER, node=huge_metadata_node(2 * MAX_NODE_BYTES))], 0,
     grpc.StatusCode.INVALID_ARGUMENT),
    ("delta-100k-subscribe", DELTA_METHOD,
     [discovery_pb2.DeltaDiscoveryRequest(
         type_url=ENDPOINT, node=envoy_node("abuser"),
         resource_names_subscribe=many_names(100_000)).SerializeToString()], 1, None),
    ("delta-too-many-subscribe", DELTA_METHOD,
     [discovery_pb2.DeltaDiscoveryRequest(
         type_url=ENDPOINT, node=envoy_node("abuser"),
         resource_names_subscribe=many_names(MAX_SUBSCRIBED_NAMES + 1)).SerializeToString()],
     0, grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("over-max-receive-size", SOTW_METHOD,
     [request(ENDPOINT, ["x" * (MAX_RECEIVE_BYTES + 1024)])], 0,
     grpc.StatusCode.RESOURCE_EXHAUSTED),
]


def parser(method):
    if method == DELTA_METHOD:
        return discovery_pb2.DeltaDiscoveryResponse.FromString
    return discovery_pb2.DiscoveryResponse.FromString


def still_serves(call, method, nonce):
    """Subscribes the call to the witness's endpoints (answering the EDS
    response in flight, `nonce`); returns the ClusterLoadAssignment it gets."""
    if method == DELTA_METHOD:
        call.send(discovery_pb2.DeltaDiscoveryRequest(
            type_url=ENDPOINT, response_nonce=nonce,
            resource_names_subscribe=["witness"]).SerializeToString())
    else:
        call.send(discovery_pb2.DiscoveryRequest(
            type_url=ENDPOINT, response_nonce=nonce,
            resource_names=["witness"]).SerializeToString())
    deadline = time.monotonic() + ANSWER_WAIT
    while True:
        response = parser(method)(call.recv(timeout=max(0.1, deadline - time.monotonic())))
        if response.type_url != ENDPOINT:
            continue
        for resource in response.resources:
            if method == DELTA_METHOD:
                resource = resource.resource
            cla = endpoint_pb2.ClusterLoadAssignment.FromString(resource.value)
            if cla.cluster_name == "witness":
                return cla


@pytest.mark.parametrize("name,method,messages,answers,expected", MALFORMED,
                         ids=[case[0] for case in MALFORMED])
def test_e4_malformed_request(attache_factory, xds, name, method, messages, answers,
                              expected):
    """Each malformed request ends its own stream with a status or is ignored;
    a well-behaved client keeps getting every change meanwhile, and attache's
    log and memory do not keep what the request carried."""
    services = witness_catalog()
    attache = attache_factory(services)
    follower = Follower(attache, xds, envoy_node("follower"), services)
    follower.move(9100)
    log_before = attache.log_path.stat().st_size

    call = RawCall(attache.xds_address, method)
    try:
        for message in messages:
            call.send(message)
        eds_nonce = ""
        for _ in range(answers):
            response = parser(method)(call.recv(timeout=ANSWER_WAIT))
            if response.type_url == ENDPOINT:
                eds_nonce = response.nonce
        follower.move(9101)
        if expected is None:
            # Ignored (or accepted): the same stream still answers a valid
            # request, with the newest state.
            assert endpoint_ports(still_serves(call, method, eds_nonce)) == [9101]
            assert call.is_open(), f"attache ended the stream: {call.status}"
        else:
            code, details = call.wait_closed()
            assert code == expected, f"{name}: {code} {details!r}, expected {expected}"
        follower.move(9102)
    finally:
        call.close()
    follower.assert_prompt(f"another client sent {name}")
    grown = attache.log_path.stat().st_size - log_before
    assert grown < 64 * 1024, f"{name} added {grown} bytes to attache's log"


def test_e4_large_requests_leave_no_memory_behind(attache_factory, xds):
    """Ten streams each send one request just under the receive limit (a 15
    MiB nonce, which no server issued, so it is ignored) and then stay open
    and idle: attache keeps nothing of those bytes once the request is
    handled. The allocator keeps some freed memory for reuse, so the first
    few such requests raise RSS; after them, more idle streams must not (each
    used to keep its last request: +15 MiB per stream)."""
    services = witness_catalog()
    attache = attache_factory(services)
    follower = Follower(attache, xds, envoy_node("follower"), services)
    follower.move(9200)
    baseline = rss_kib(attache.proc.pid)

    calls, rss = [], []
    try:
        for index in range(10):
            call = RawCall(attache.xds_address)
            call.send(request(ENDPOINT, ["witness"], node=envoy_node(f"large-{index}"),
                              response_nonce="n" * (15 * MIB)))
            calls.append(call)
            response = discovery_pb2.DiscoveryResponse.FromString(call.recv(timeout=ANSWER_WAIT))
            assert endpoint_ports(by_name(response, ENDPOINT)["witness"]) == [9200]
            rss.append(rss_kib(attache.proc.pid) - baseline)
        follower.move(9201)
        assert all(call.is_open() for call in calls)
    finally:
        for call in calls:
            call.close()
    wait_until(lambda: not any(clients_of(attache, f"large-{i}") for i in range(10)),
               what="the large streams to end")
    follower.move(9202)
    follower.assert_prompt("other clients sent requests near the size limit")
    print(f"\nRSS growth (MiB) after each idle stream's 15 MiB request: "
          f"{[round(x / 1024) for x in rss]}")
    # Kept request bytes would add 15 MiB per stream (about 105 MiB here);
    # the allocator's own noise is a few MiB per stream.
    later = rss[-1] - rss[2]
    assert later < 50 * 1024, (
        f"7 more idle streams whose last request was 15 MiB hold {later / 1024:.0f} MiB")


# --- 2: a client that never reads -------------------------------------------------------
# What one stream can have in flight is a CDS response (every cluster) and
# an EDS response (split at 4 MiB): 8,000 services of 20 endpoints make
# about 5 MiB, more than the kernel buffers on a loopback connection with a
# reader that reads nothing (attache's 4 MiB send buffer, a few KiB for the
# client).
BULK_SERVICES = 8000
BULK_ENDPOINTS = 20


def bulk_attache(attache_factory, services, bulk_services=BULK_SERVICES):
    """attache serving `services` from hosts.yaml (edited by the tests) and a
    big catalog from bulk.json (never edited: re-reading it would slow every
    change down). Returns (attache, the bulk service names)."""
    attache = attache_factory(services, extra_config={"sources": [
        {"name": "hosts", "type": "file", "path": "hosts.yaml"},
        {"name": "bulk", "type": "file", "path": "bulk.json"}]}, start=False)
    bulk = big_catalog(bulk_services, BULK_ENDPOINTS)
    write_json_hosts(attache.workdir / "bulk.json", bulk)
    # yaml-cpp reads the 10 MB file in about 5 s, an ASan build in 30 to 40.
    attache.start(timeout=90 if SANITIZED else 20)
    return attache, sorted(bulk)


def test_e2_client_that_never_reads_delays_no_one(attache_factory, xds):
    """A client subscribes to every cluster and every assignment of a big
    catalog (responses of several MiB) and never reads its socket (it grants
    a huge HTTP/2 window, so TCP's buffers fill and stop attache). Meanwhile every
    change reaches a well-behaved client promptly, and attache keeps only the
    newest state for the stuck one: no response per change is queued for it,
    and its memory does not grow with the changes."""
    services = witness_catalog()
    attache, _ = bulk_attache(attache_factory, services)
    follower = Follower(attache, xds, envoy_node("follower"), services)
    # The first generations after the start raise RSS by a constant (the
    # allocator's pools settle): measure after them.
    for port in (9297, 9298, 9299):
        follower.move(port)

    # Incremental, so that it can subscribe to everything ("*") in a few
    # bytes: a client that reads nothing cannot learn that attache opened
    # its own HTTP/2 window, so it sends less than the initial 64 KiB.
    stuck = BlindClient(attache.xds_port, DELTA_METHOD, open_window=True)
    try:
        stuck.send(discovery_pb2.DeltaDiscoveryRequest(
            type_url=CLUSTER, node=envoy_node("stuck"),
            resource_names_subscribe=["*"]).SerializeToString())
        stuck.send(discovery_pb2.DeltaDiscoveryRequest(
            type_url=ENDPOINT, resource_names_subscribe=["*"]).SerializeToString())
        # Stuck for real: a response gRPC cannot finish writing.
        wait_until(lambda: client_of(attache, "stuck")["queued_responses"] >= 1
                   and client_of(attache, "stuck")["types"].get(ENDPOINT),
                   timeout=20, what="attache to be blocked writing to the stuck client")
        time.sleep(1.0)  # absence of progress cannot be polled
        before = client_of(attache, "stuck")
        assert before["queued_responses"] >= 1, "the stuck client read its responses"
        rss_before = rss_kib(attache.proc.pid)

        for port in range(9301, 9321):
            follower.move(port)
        follower.assert_prompt("another client read nothing")

        after = client_of(attache, "stuck")
        for type_url, state in after["types"].items():
            assert state["response_count"] == before["types"][type_url]["response_count"], (
                f"attache made new {type_url} responses for a client that has not "
                f"read the last one: {before['types'][type_url]} -> {state}")
        assert after["queued_responses"] <= before["queued_responses"]
        grown = rss_kib(attache.proc.pid) - rss_before
        assert grown < 16 * 1024, f"attache grew by {grown / 1024:.0f} MiB for 20 changes"
        print(f"\nstuck client: {after['queued_responses']} response(s) unwritten, "
              f"RSS +{grown / 1024:.1f} MiB over 20 changes; follower latencies ms: "
              f"{[round(x * 1000) for x in follower.latencies]}")
    finally:
        stuck.close()
    wait_until(lambda: not clients_of(attache, "stuck"), what="the stuck stream to end")
    follower.move(9399)


def test_e2_client_that_acks_unread_responses_is_cut_off(attache_factory, xds):
    """A hostile client reads nothing but keeps ACKing (it guesses each nonce;
    here the test reads them from /debug/clients): every ACK lets attache
    make the next response, which cannot be written. attache ends the stream
    once more than 32 responses wait, instead of queueing every version, and
    counts it; a well-behaved client is not delayed."""
    services = witness_catalog()
    attache, bulk = bulk_attache(attache_factory, services, bulk_services=1000)
    follower = Follower(attache, xds, envoy_node("follower"), services)
    rejected_before = metric(attache, "attache_xds_rejected_requests_total",
                             reason="unread_responses")

    names = bulk[:300] + ["witness"]
    blind = BlindClient(attache.xds_port)
    try:
        blind.send(discovery_pb2.DiscoveryRequest(
            type_url=ENDPOINT, resource_names=names,
            node=envoy_node("blind")).SerializeToString())
        wait_until(lambda: clients_of(attache, "blind")
                   and client_of(attache, "blind")["types"].get(ENDPOINT),
                   what="the blind client's subscription")
        most_queued = 0
        for round_ in range(45):
            state = client_of(attache, "blind")
            most_queued = max(most_queued, state["queued_responses"])
            if state["closing"]:
                break
            nonce = state["types"][ENDPOINT]["sent_nonce"]
            blind.send(discovery_pb2.DiscoveryRequest(
                type_url=ENDPOINT, resource_names=names, response_nonce=nonce,
                version_info=state["types"][ENDPOINT]["sent_version"]).SerializeToString())
            wait_until(lambda: not client_of(attache, "blind")["types"][ENDPOINT]
                       ["awaiting_ack"], what="the blind ACK to be taken")
            follower.move(9400 + round_)
            wait_until(lambda: client_of(attache, "blind")["types"][ENDPOINT]["sent_nonce"]
                       != nonce or client_of(attache, "blind")["closing"],
                       what="the next response for the blind client")
        state = client_of(attache, "blind")
        print(f"\nblind ACKer: cut off after {round_} rounds, at most "
              f"{most_queued} responses queued; follower latencies ms: "
              f"{[round(x * 1000) for x in follower.latencies]}")
        assert state["closing"], f"still open after 45 unread responses: {state}"
        assert most_queued <= 33 and state["queued_responses"] <= 1, state
        assert metric(attache, "attache_xds_rejected_requests_total",
                      reason="unread_responses") == rejected_before + 1
        follower.move(9499)
        follower.assert_prompt("another client ACKed responses it did not read")
    finally:
        blind.close()


# --- 1: a reconnect storm ---------------------------------------------------------------
STORM_CLIENTS = int(os.environ.get("ATTACHE_STORM_CLIENTS", "2000"))
# While 2,000 clients reconnect on a shared 2-core machine, a change may wait
# behind the storm's first responses for a while; it must not wait for all
# of them (the storm takes several seconds) and must never be lost.
STORM_PROMPT = 5.0


def weight_of(cla, address, port):
    """The load-balancing weight of one endpoint of an assignment."""
    for locality in cla.endpoints:
        for lb in locality.lb_endpoints:
            socket = lb.endpoint.address.socket_address
            if (socket.address, socket.port_value) == (address, port):
                return lb.load_balancing_weight.value
    return None


@pytest.mark.skipif(not XDSLOAD.exists(), reason="bench/build.sh has not built xdsload")
def test_e1_reconnect_storm(attache_factory, xds, tmp_path):
    """2,000 simulated Envoys (xdsload) connect, follow one second of churn,
    then all drop and reconnect at once: each must end up holding exactly the
    newest state of its clusters (every response also decoded with the
    official types), while a client that stays connected keeps getting
    changes during the storm."""
    workload = tmp_path / "workload"
    subprocess.run([str(XDSLOAD), "gen", "-dir", str(workload), "-services", "200",
                    "-clusters", "2", "-endpoints", "4"], check=True)
    attache = attache_factory({}, extra_config={"sources": [
        {"name": "hosts", "type": "file", "path": "hosts.yaml"},
        {"name": "workload", "type": "file", "path": str(workload)}]})

    # The witness: one workload service whose first endpoint's weight the
    # test changes during the storm. xdsload tracks addresses, ports and
    # health only, so these edits do not disturb its own accounting.
    witness_file = sorted(workload.glob("*.c0.json"))[0]
    witness = next(iter(json.loads(witness_file.read_text())["services"]))
    follower = xds(attache, envoy_node("follower"))
    follower.subscribe(ENDPOINT, [witness])

    def set_weight(weight):
        doc = json.loads(witness_file.read_text())
        first = doc["services"][witness]["endpoints"][0]
        first["weight"] = weight
        tmp = witness_file.with_name("." + witness_file.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, witness_file)
        started = time.monotonic()
        follower.recv_until(lambda r: r.type_url == ENDPOINT and weight_of(
            by_name(r, ENDPOINT)[witness], first["address"], first["port"]) == weight,
            timeout=30)
        return time.monotonic() - started

    load = subprocess.Popen(
        [str(XDSLOAD), "run", "-dir", str(workload), "-target", attache.xds_address,
         "-pid", str(attache.proc.pid), "-clients", str(STORM_CLIENTS), "-subscribe", "10",
         "-churn", "100", "-churn-seconds", "1", "-storm", "-verify", "-timeout", "60s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    storm_started, storm_ended = threading.Event(), threading.Event()
    log_lines = []

    def watch_log():
        for line in load.stderr:
            log_lines.append(line.rstrip())
            if "changes, latency" in line:     # the churn phase is over
                storm_started.set()
            if line.startswith("reconnect storm") or "reconnect storm:" in line:
                storm_ended.set()
        storm_started.set()
        storm_ended.set()

    threading.Thread(target=watch_log, daemon=True).start()
    try:
        assert storm_started.wait(120), "xdsload did not get through its churn phase"
        during = []
        weight = 2
        while not storm_ended.is_set():
            during.append(set_weight(weight))
            weight += 1
        out, _ = load.communicate(timeout=120)
    finally:
        kill(load)
    assert load.returncode == 0, "\n".join(log_lines)
    report = json.loads(out)
    phases = {phase["name"]: phase for phase in report["phases"]}
    storm = phases["reconnect storm"]
    print(f"\nreconnect storm: {STORM_CLIENTS} clients in {storm['seconds']:.2f} s, "
          f"{storm['responses']} responses, server CPU {storm['server_cpu_s']:.2f} s, "
          f"RSS {storm['server']['rss_kib'] / 1024:.0f} MiB; follower got {len(during)} "
          f"changes during it, latencies ms {[round(x * 1000) for x in during]}")
    for phase in report["phases"]:
        assert phase["converged_clients"] == STORM_CLIENTS, (
            f"{phase['name']}: {phase['converged_clients']} of {STORM_CLIENTS} clients hold "
            f"the newest state\n" + "\n".join(log_lines))
    assert report["verify_mismatches"] == 0, "\n".join(log_lines)
    churn = phases["churn 100/s"]
    assert churn["samples"] + churn.get("cancelled_samples", 0) == churn["expected_samples"]
    assert during, "the storm ended before the follower saw a change"
    assert max(during) < STORM_PROMPT, f"a change took {max(during):.2f} s during the storm"
    # After the storm, one more change reaches the follower at once.
    assert set_weight(weight) < PROMPT


# --- 7: strings a client sends back at the debug pages ---------------------------
def test_e7_client_strings_cannot_break_or_swell_debug_pages(attache_factory, xds):
    """A NACK message whose 1024th byte falls inside a character, and a node id
    of 200 KiB: /debug/clients still answers valid JSON, with both clipped on a
    character boundary (a cut inside a character used to make the page answer
    500 for as long as that client stayed connected)."""
    attache = attache_factory(catalog("alpha"))
    long_id = "n" * (200 * 1024)
    hog = xds(attache, envoy_node(long_id))
    hog.subscribe(CLUSTER)
    stream = xds(attache, envoy_node("utf8-nacker"))
    cds = stream.subscribe(CLUSTER, ack=False)
    message = "x" + "é" * 1000  # byte 1024 is the second byte of an "é"
    stream.nack(cds, message=message)

    def nack_recorded():
        entry = client_of(attache, "utf8-nacker")
        return entry if entry["types"] and any(
            (t.get("last_nack") or {}).get("message") for t in entry["types"].values()) else None

    entry = wait_until(nack_recorded, timeout=5, what="the NACK in /debug/clients")
    recorded = next(t["last_nack"]["message"] for t in entry["types"].values()
                    if t.get("last_nack"))
    kept = recorded.split("...(")[0]
    assert message.startswith(kept) and len(kept.encode()) == 1023, recorded[:80]
    assert recorded.endswith(f"...({len(message.encode())} bytes)")
    page = http_get(attache.admin_url + "/debug/clients")
    assert len(page) < 64 * 1024, f"/debug/clients is {len(page)} bytes with one long node id"
    assert not clients_of(attache, long_id)
    listed = json.loads(page)
    listed = listed.get("clients", []) if isinstance(listed, dict) else listed
    assert any(c["node_id"] == "n" * 1024 + f"...({len(long_id)} bytes)" for c in listed)


# --- 8: a client that connects and leaves in a loop -----------------------------------
def test_e8_connect_loop_cannot_flood_the_log(attache_factory, xds):
    """300 clients connect and leave in a row: attache logs the first
    hundred at info level and the rest at debug level only (the first line
    of the next 10 s window says how many were held back: LogBudget's unit
    test)."""
    attache = attache_factory(witness_catalog(), start=False)
    attache.extra_args = ["--log-format", "json"]
    attache.start()
    for i in range(300):
        with xds(attache, envoy_node(f"looper-{i}")) as stream:
            stream.subscribe(CLUSTER)
    wait_until(lambda: not clients_of(attache, "looper-299"), timeout=10,
               what="the last looper to leave")
    witness = xds(attache, envoy_node("after-the-loop"))
    witness.subscribe(CLUSTER)
    wait_until(lambda: clients_of(attache, "after-the-loop"), timeout=10,
               what="the client after the loop")
    records = [json.loads(line) for line in attache.log().splitlines() if line.strip()]
    info = [r["msg"] for r in records if r["level"] == "info"
            and ("connected from" in r["msg"] or "disconnected (" in r["msg"])]
    debug = [r["msg"] for r in records if r["level"] == "debug"
             and ("connected from" in r["msg"] or "disconnected (" in r["msg"])]
    # 600 lines in all; 100 per 10 s window pass at info level.
    assert len(info) + len(debug) >= 600
    assert 100 <= len(info) <= 200, f"{len(info)} connect/leave lines at info level"


# --- 9: clients that each claim a place of their own ----------------------------------
def test_e9_claimed_places_do_not_multiply_endpoint_maps(attache_factory, xds):
    """300 streams, each claiming a region and zone no endpoint is in, all
    subscribed to every load assignment of 500 zone-failover services:
    they share the place-less map (they rank every locality alike), so
    attache builds 1 load-assignment map for them, not 300 (RSS is printed:
    most of its growth is gRPC's per-connection state, one connection per
    stream here). A client in a real zone still gets its own ranking."""
    services = big_catalog(500, 3)
    services.update(catalog("witness"))
    attache = attache_factory({}, extra_config={"defaults": {"failover": "zone-failover"}},
                              start=False)
    write_json_hosts(attache.hosts_path, services)
    attache.start()
    follower = Follower(attache, xds, envoy_node("follower", zone="zone-1"), services)
    follower.move(9100)
    before = rss_kib(attache.proc.pid)
    calls = []
    try:
        for i in range(300):
            node = envoy_node(f"claimer-{i}")
            node.locality.region = f"nowhere-{i}"
            node.locality.zone = f"crater-{i}"
            # A connection of its own each: grpcio's channels to one target
            # share one by default, and attache allows 100 streams on it.
            call = RawCall(attache.xds_address,
                           options=[("grpc.use_local_subchannel_pool", 1)])
            call.send(discovery_pb2.DiscoveryRequest(
                node=node, type_url=ENDPOINT,
                resource_names=list(services)).SerializeToString())
            calls.append(call)
        for call in calls:
            call.recv(timeout=ANSWER_WAIT)
        follower.move(9101)
        follower.assert_prompt("300 clients claimed places of their own")
        views = metric(attache, "attache_xds_views")
        maps = metric(attache, "attache_xds_endpoint_maps")
        grown = rss_kib(attache.proc.pid) - before
    finally:
        for call in calls:
            call.close()
    assert views >= 301, views
    # The place-less map, and the follower's: zone-1 holds endpoints.
    assert maps <= 2, f"{maps:.0f} endpoint maps for 301 places"
    print(f"e9: {views:.0f} views, {maps:.0f} endpoint maps, RSS +{grown / 1024:.1f} MiB")


# --- 10: streams per connection --------------------------------------------------------
def test_e10_streams_per_connection_are_capped_in_settings(attache_factory):
    """attache's first HTTP/2 SETTINGS frame caps concurrent streams per
    connection (HTTP/2's default is no limit), so one connection cannot open
    thousands of streams."""
    import socket
    import struct
    attache = attache_factory(witness_catalog())
    sock = socket.create_connection(("127.0.0.1", attache.xds_port), timeout=5)
    try:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        buffer = b""
        settings = None
        while settings is None:
            chunk = sock.recv(65536)
            assert chunk, "attache closed the connection before its SETTINGS"
            buffer += chunk
            while len(buffer) >= 9:
                length = int.from_bytes(buffer[:3], "big")
                kind, flags = buffer[3], buffer[4]
                if len(buffer) < 9 + length:
                    break
                payload, buffer = buffer[9:9 + length], buffer[9 + length:]
                if kind == 4 and not flags & 1:  # SETTINGS, not an ACK
                    settings = dict(struct.unpack(">HI", payload[i:i + 6])
                                    for i in range(0, len(payload), 6))
                    break
    finally:
        sock.close()
    assert settings.get(3) == 100, f"SETTINGS: {settings}"  # MAX_CONCURRENT_STREAMS
