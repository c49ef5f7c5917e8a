"""API server faults, end to end: a real kube-apiserver behind a
fault-injecting HTTPS proxy (apiserver_faults.FaultyApiServer) that hangs,
trickles bytes, answers 500, closes every watch after a second, answers 410
again and again, or slips malformed lines before real events (broken JSON,
wrong types, unknown types, no metadata, a 4 MiB line, an event without
resourceVersion, a line that never ends).

For each fault: attache keeps serving exactly the last good endpoints
(nothing withdrawn), /debug/sources and /metrics report the problem, its log
names it, another source (the same API server, reached directly) is not
affected, the proxy counts no request storm, and once the fault heals (or
while it lasts, for the faults that still let data through) attache converges
to the exact new state in bounded time.

Faults covered elsewhere (test_k8s_failures.py): the API server killed
(test_crashed_cluster_keeps_serving_stale_and_converges_when_back), a real
410 after etcd compaction (test_expired_resource_version_relists_without_
dropping_endpoints), one dropped watch and a partition (test_dropped_watch_*,
test_changes_made_while_attache_was_cut_off_*).

Endpoint addresses are documentation addresses, data only.
"""
import time
import types
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apiserver_faults import (CLOSE_WATCHES, ERROR_500, GONE, HANG, MALFORMED, MALFORMED_LINES,
                              PHANTOM_ADDRESS, TRICKLE, FaultyApiServer)
from kube_support import cla_rows, debug_sources, endpoint_slice, ep, log_count, service, wait_until

FAULTY, DIRECT = "faulty", "direct"
# The faulty source's timeouts, short so that each test stays a few seconds:
# a request unanswered for 1 s fails; watches end (server side) after 3 s.
TIMEOUTS = {"request_timeout": "1s", "watch_timeout": "3s"}
# attache's watch/list backoff tops out at 10 s (informer.h).
BACKOFF_MAX = 10.0


@pytest.fixture(scope="module")
def cluster(clusters):
    kube = clusters.make("faults")
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    return kube


@pytest.fixture
def proxies():
    made = []
    yield made
    for proxy in made:
        proxy.close()


def row(source, address, zone="zone-a"):
    return (f"region-{source}", zone, source, address, 8080, "HEALTHY")


def scrape(attache):
    """{(sample name, source label): value} of /metrics."""
    with urllib.request.urlopen(attache.admin_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, s.labels.get("source")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def holds_for(predicate, seconds, what):
    """Asserts predicate stays true for `seconds` (a bounded observation
    window, for what must NOT happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"violated: {what}"
        time.sleep(0.05)


def start_rig(name, cluster, attaches, ads, proxies, tmp_path, proxy_options=None, **fields):
    """Service `name` with two endpoints in namespace default, seen through
    the proxy (source `faulty`), and `name`-o in namespace other, seen
    directly (source `direct`); attache serving both to a recording ADS
    stream."""
    proxy = FaultyApiServer(cluster, tmp_path, **(proxy_options or {}))
    proxies.append(proxy)
    n = sum(map(ord, name)) % 200 + 20  # per-test addresses, for readable failures
    rig = types.SimpleNamespace(proxy=proxy, cluster=cluster, svc=f"{name}.default",
                                other=f"{name}-o.other", name=name, n=n)
    cluster.apply(service(name), endpoint_slice(f"{name}-1", name, [
        ep(f"192.0.2.{n}", zone="zone-a"), ep(f"192.0.2.{n + 1}", zone="zone-a")]))
    cluster.apply(service(f"{name}-o", namespace="other"),
                  endpoint_slice(f"{name}-o-1", f"{name}-o", [ep(f"198.51.100.{n}", zone="zone-a")],
                                 namespace="other"))
    faulty = dict({"name": FAULTY, "type": "kubernetes",
                   "kubeconfig": str(proxy.kubeconfig(tmp_path / "faulty.kubeconfig")),
                   "namespaces": ["default"], "locality": {"region": f"region-{FAULTY}"}},
                  **TIMEOUTS, **fields)
    direct = {"name": DIRECT, "type": "kubernetes", "kubeconfig": str(cluster.kubeconfig),
              "namespaces": ["other"], "locality": {"region": f"region-{DIRECT}"}}
    rig.attache = attaches([faulty, direct])
    rig.recorder = ads(rig.attache, [rig.svc, rig.other])
    rig.before = sorted([row(FAULTY, f"192.0.2.{n}"), row(FAULTY, f"192.0.2.{n + 1}")])
    rig.version, _ = rig.recorder.wait_rows(rig.svc, rig.before)
    rig.recorder.wait_rows(rig.other, [row(DIRECT, f"198.51.100.{n}")])
    wait_until(lambda: all(s["state"] == "synced" for s in debug_sources(rig.attache).values()),
               timeout=10, what="both sources synced")
    rig.errors = debug_sources(rig.attache)[FAULTY]["errors"]
    return rig


def change_faulty(rig, last_octet):
    """Replaces the second endpoint of the faulty source's Service; returns
    the rows attache must then serve."""
    rig.cluster.apply(endpoint_slice(f"{rig.name}-1", rig.name, [
        ep(f"192.0.2.{rig.n}", zone="zone-a"), ep(f"192.0.2.{last_octet}", zone="zone-b")]))
    return sorted([row(FAULTY, f"192.0.2.{rig.n}"), row(FAULTY, f"192.0.2.{last_octet}", "zone-b")])


def assert_reported(rig, log_text, since):
    """/debug/sources, /metrics and the log say the faulty source has a
    problem (fault on at `since`); the direct one is fine."""
    state = wait_until(lambda: (s := debug_sources(rig.attache)[FAULTY])["errors"] > rig.errors
                       and s["state"] == "stale" and s, timeout=15,
                       what="the faulty source reported stale")
    assert rig.proxy.cluster.server not in state["last_error"]  # it names the proxy it uses
    assert f"127.0.0.1:{rig.proxy.port}" in state["last_error"], state
    metrics = wait_until(lambda: (m := scrape(rig.attache))[("attache_source_up", FAULTY)] == 0
                         and m, timeout=5, what="attache_source_up{faulty} == 0")
    assert metrics[("attache_source_errors_total", FAULTY)] > rig.errors
    assert metrics[("attache_source_up", DIRECT)] == 1
    assert metrics[("attache_source_errors_total", DIRECT)] == 0
    assert debug_sources(rig.attache)[DIRECT]["state"] == "synced"
    print(f"{rig.name}: reported stale {time.monotonic() - since:.1f}s after the fault")
    wait_until(lambda: log_count(rig.attache, log_text) > 0, timeout=5,
               what=f"attache's log to say {log_text!r}")
    return state


def assert_direct_unaffected(rig, octet):
    """The direct source follows a change while the faulty one suffers."""
    rig.cluster.apply(endpoint_slice(f"{rig.name}-o-1", f"{rig.name}-o",
                                     [ep(f"198.51.100.{octet}", zone="zone-a")], namespace="other"))
    rig.recorder.wait_rows(rig.other, [row(DIRECT, f"198.51.100.{octet}")], timeout=5)


def assert_nothing_lost(rig, since, allowed=()):
    """Every assignment of the faulty Service sent since `since` is the last
    good one (or one of `allowed`), and the cluster was never withdrawn."""
    good = [rig.before, *map(sorted, allowed)]
    with rig.recorder.lock:
        cds = [sorted(c) for t, _, c in rig.recorder.cds if t >= since]
    assert all(rig.svc in names for names in cds), f"{rig.svc} withdrawn through CDS: {cds}"
    sent = [cla_rows(c) for t, _, c in rig.recorder.cla_history(rig.svc) if t >= since]
    bad = [rows for rows in sent if rows not in good]
    assert not bad, f"{rig.svc} was sent other endpoints than the last good ones: {bad}"
    assert rig.recorder.served_rows(rig.svc) in good
    assert rig.recorder.closed is None, rig.recorder.closed


def assert_alive(rig):
    assert rig.attache.proc.poll() is None, f"attache exited:\n{rig.attache.log()[-3000:]}"


def heal_and_converge(rig, octet, bound, pending=None):
    """Heals the proxy, waits for `pending` (the rows of a change made during
    the fault) if given, then changes the Service again and waits for exactly
    the new endpoints; returns the seconds it took."""
    rig.proxy.heal()
    healed = time.monotonic()
    if pending is not None:
        rig.recorder.wait_rows(rig.svc, pending, timeout=bound)
        print(f"{rig.name}: the change made during the fault served "
              f"{time.monotonic() - healed:.1f}s after the heal")
    after = change_faulty(rig, octet)
    rig.recorder.wait_rows(rig.svc, after, timeout=bound)
    took = time.monotonic() - healed
    wait_until(lambda: debug_sources(rig.attache)[FAULTY]["state"] == "synced", timeout=5,
               what="the faulty source synced again")
    assert scrape(rig.attache)[("attache_source_up", FAULTY)] == 1
    assert_alive(rig)
    print(f"{rig.name}: converged {took:.1f}s after the heal")
    return took


def test_hung_api_server(cluster, attaches, ads, proxies, tmp_path):
    """Accepts connections, reads requests, never answers; open watches
    freeze. attache gives up on each request after request_timeout and on
    the frozen watch past the server's watch timeout, instead of waiting
    minutes for the idle limit."""
    rig = start_rig("hang", cluster, attaches, ads, proxies, tmp_path)
    since = time.monotonic()
    rig.proxy.set_mode(HANG)
    # Frozen watches end at most watch_timeout + request_timeout (4 s) after
    # they started; the watches after them are never answered (1 s each).
    assert_reported(rig, "no answer within 1000 ms", since)
    noticed = time.monotonic() - since
    assert noticed < 3 + 1 + 3, f"took {noticed:.1f}s to notice the hang"
    assert_direct_unaffected(rig, rig.n + 50)
    during = change_faulty(rig, rig.n + 60)  # made while attache cannot see it
    holds_for(lambda: rig.recorder.served_rows(rig.svc) == rig.before, 3,
              "the last good endpoints stay while the API server hangs")
    assert_nothing_lost(rig, since)
    window = time.monotonic() - since
    requests = rig.proxy.count(since=since)
    # Two informers retrying with exponential backoff from 250 ms.
    assert requests <= 2 * (window / 0.5 + 2), f"{requests} requests in {window:.1f}s"
    assert rig.proxy.count("list", since=since) == 0  # the watch resumes; nothing to relist
    print(f"hang: {requests} requests in {window:.1f}s")
    heal_and_converge(rig, rig.n + 70, bound=BACKOFF_MAX + 3, pending=during)


def test_slow_api_server_trickling_bytes(cluster, attaches, ads, proxies, tmp_path):
    """Every byte to attache 20 ms after the previous one (50 bytes/s), open
    watches included: a watch's answer takes seconds, an event over a
    minute. attache keeps the last good state, fails the requests after
    request_timeout and converges once the server is fast again."""
    rig = start_rig("slow", cluster, attaches, ads, proxies, tmp_path,
                    proxy_options={"trickle_ms": 20})
    since = time.monotonic()
    rig.proxy.set_mode(TRICKLE)
    during = change_faulty(rig, rig.n + 60)
    assert_reported(rig, "no answer within 1000 ms", since)
    assert_direct_unaffected(rig, rig.n + 50)
    holds_for(lambda: rig.recorder.served_rows(rig.svc) in (rig.before, during), 2,
              "the endpoints are the last good ones (or the change, if it got through)")
    assert_nothing_lost(rig, since, allowed=[during])
    window = time.monotonic() - since
    requests = rig.proxy.count(since=since)
    assert requests <= 2 * (window / 0.5 + 2), f"{requests} requests in {window:.1f}s"
    print(f"slow: {requests} requests in {window:.1f}s")
    heal_and_converge(rig, rig.n + 70, bound=BACKOFF_MAX + 3, pending=during)


def test_api_server_answering_500(cluster, attaches, ads, proxies, tmp_path):
    rig = start_rig("err500", cluster, attaches, ads, proxies, tmp_path)
    since = time.monotonic()
    rig.proxy.set_mode(ERROR_500)  # open watches are cut; every request gets 500
    assert_reported(rig, "HTTP 500", since)
    assert_direct_unaffected(rig, rig.n + 50)
    during = change_faulty(rig, rig.n + 60)
    holds_for(lambda: rig.recorder.served_rows(rig.svc) == rig.before, 4,
              "the last good endpoints stay while the API server answers 500")
    assert_nothing_lost(rig, since)
    window = time.monotonic() - since
    requests = rig.proxy.count(since=since)
    # Backoff doubles from 250 ms: over ~6 s, about 5 attempts per informer.
    assert 2 <= requests <= 2 * (window / 0.5 + 2), f"{requests} requests in {window:.1f}s"
    print(f"err500: {requests} requests in {window:.1f}s")
    heal_and_converge(rig, rig.n + 70, bound=BACKOFF_MAX + 3, pending=during)


def test_watches_closed_every_second(cluster, attaches, ads, proxies, tmp_path):
    """Every watch is cut one second after it opened (an idle-timeout load
    balancer gone mad). The watch resumes from its resourceVersion each time,
    changes still arrive within a second or so, and max_staleness (3 s)
    never withdraws a cluster whose API server answers every watch."""
    rig = start_rig("flap", cluster, attaches, ads, proxies, tmp_path, max_staleness="3s")
    since = time.monotonic()
    rig.proxy.set_mode(CLOSE_WATCHES)
    wait_until(lambda: debug_sources(rig.attache)[FAULTY]["errors"] >= rig.errors + 4,
               timeout=10, what="several cut watches")
    assert_direct_unaffected(rig, rig.n + 50)
    state = debug_sources(rig.attache)[FAULTY]
    assert f"127.0.0.1:{rig.proxy.port}" in state["last_error"], state
    # While the fault lasts, changes still come through the short watches.
    changed = time.monotonic()
    during = change_faulty(rig, rig.n + 60)
    rig.recorder.wait_rows(rig.svc, during, timeout=5)
    took = time.monotonic() - changed
    # Long enough for a backoff that kept growing to leave the source stale
    # past max_staleness between two watches.
    holds_for(lambda: rig.recorder.served_rows(rig.svc) == during, 5,
              "endpoints kept (max_staleness 3 s must not withdraw them)")
    assert_nothing_lost(rig, since, allowed=[during])
    window = time.monotonic() - since
    watches = rig.proxy.count("watch", since=since)
    assert watches <= 2 * (window + 2), f"{watches} watches in {window:.1f}s"
    assert rig.proxy.count("list", since=since) == 0, "a cut watch must resume, not relist"
    print(f"flap: change followed in {took:.1f}s, {watches} watches in {window:.1f}s")
    heal_and_converge(rig, rig.n + 70, bound=5)
    assert_alive(rig)


@pytest.mark.parametrize("as_http", [False, True], ids=["error-event", "http-410"])
def test_api_server_answering_410_again_and_again(cluster, attaches, ads, proxies, tmp_path,
                                                  as_http):
    """Every watch answers 410 Gone (an ERROR watch event with a Status of
    code 410, or HTTP 410) although the list just made is fresh. attache
    relists (lists still work and carry changes), but backs off instead of
    hammering the server with list+watch loops, and says so."""
    rig = start_rig("gone-http" if as_http else "gone", cluster, attaches, ads, proxies,
                    tmp_path, proxy_options={"gone_http": as_http})
    since = time.monotonic()
    rig.proxy.set_mode(GONE)
    assert_reported(rig, "resourceVersion expired (410) again right after a list", since)
    assert_direct_unaffected(rig, rig.n + 50)
    # The relists carry changes even while every watch fails.
    changed = time.monotonic()
    during = change_faulty(rig, rig.n + 60)
    rig.recorder.wait_rows(rig.svc, during, timeout=BACKOFF_MAX + 3)
    took = time.monotonic() - changed
    holds_for(lambda: rig.recorder.served_rows(rig.svc) == during, 2, "endpoints kept")
    assert_nothing_lost(rig, since, allowed=[during])
    window = time.monotonic() - since
    lists = rig.proxy.count("list", since=since)
    watches = rig.proxy.count("watch", since=since)
    # Without backoff this is a list+watch loop: hundreds a second.
    assert lists <= 2 * (window / 0.5 + 2), f"{lists} lists in {window:.1f}s (a relist storm)"
    assert watches <= lists + 4, f"{watches} watches for {lists} lists"
    print(f"{rig.name}: {lists} lists, {watches} watches in {window:.1f}s; "
          f"change followed in {took:.1f}s")
    heal_and_converge(rig, rig.n + 70, bound=BACKOFF_MAX + 3)


def test_malformed_watch_events(cluster, attaches, ads, proxies, tmp_path):
    """A malformed line before a real watch event, one kind at a time:
    invalid JSON, wrong types, an unknown event type, an object without
    metadata, a 4 MiB line, a well-formed event without resourceVersion
    (carrying an endpoint the server never had), and a line that never ends.
    Each time attache drops the watch, relists exactly once (or, for the
    endless line, hangs up after 16 MiB and resumes the watch), and serves
    exactly the state the real server has: nothing lost, nothing invented."""
    rig = start_rig("garbage", cluster, attaches, ads, proxies, tmp_path)
    rig.proxy.phantom_service = rig.name
    since = time.monotonic()
    rig.proxy.set_mode(MALFORMED)
    samples = list(MALFORMED_LINES)
    allowed = []
    for index, sample in enumerate(samples):
        injected = len(rig.proxy.injected)
        errors = debug_sources(rig.attache)[FAULTY]["errors"]
        log_text = "a line longer than 16 MiB" if sample == "endless line" else "malformed event"
        logged = log_count(rig.attache, log_text)
        # One bad line in a watch that has been working (open for over a
        # second): attache relists at once. (Garbage again right after each
        # relist would make it back off: 0.3 s growing to 10 s.)
        wait_until(lambda: rig.proxy.watch_age("endpointslices") > 1.2, timeout=15,
                   what="an EndpointSlice watch open for over a second")
        rig.proxy.inject(sample)
        changed = time.monotonic()
        allowed.append(change_faulty(rig, rig.n + 60 + index))
        rig.recorder.wait_rows(rig.svc, allowed[-1], timeout=10)
        took = time.monotonic() - changed
        assert [name for _, name, _ in rig.proxy.injected[injected:]] == [sample]
        wait_until(lambda: debug_sources(rig.attache)[FAULTY]["errors"] > errors, timeout=5,
                   what=f"the {sample} line reported")
        wait_until(lambda: log_count(rig.attache, log_text) > logged, timeout=5,
                   what=f"attache's log to say {log_text!r}")
        wait_until(lambda: debug_sources(rig.attache)[FAULTY]["state"] == "synced", timeout=5,
                   what="synced again")
        print(f"garbage: {sample}: followed in {took:.1f}s")
    assert_nothing_lost(rig, since, allowed=allowed)
    assert all(PHANTOM_ADDRESS not in str(rows) for rows in allowed)
    # The endless line: attache hung up after its 16 MiB limit (plus what
    # the socket buffers held), long before the proxy's 64 MiB.
    assert len(rig.proxy.endless_sent) == 1
    assert rig.proxy.endless_sent[0] < 32 << 20, f"{rig.proxy.endless_sent[0]} bytes accepted"
    slice_lines = [name for _, name, resource in rig.proxy.injected
                   if resource == "endpointslices"]
    assert slice_lines == samples
    slice_lists = rig.proxy.count("list", "endpointslices", since=since)
    assert slice_lists == len(samples) - 1, f"{slice_lists} lists for {len(samples) - 1} bad events"
    metrics = scrape(rig.attache)
    assert metrics[("attache_source_errors_total", FAULTY)] >= rig.errors + len(samples)
    assert metrics[("attache_source_errors_total", DIRECT)] == 0
    assert_direct_unaffected(rig, rig.n + 50)
    assert_alive(rig)
    print(f"garbage: endless line: attache hung up after {rig.proxy.endless_sent[0] >> 20} MiB")
    heal_and_converge(rig, rig.n + 90, bound=5)
