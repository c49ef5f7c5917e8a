"""Helpers of the failover tests: backends placed in zones, the host file that
lists them, a steady request loop through Envoy, and readers for the
priorities and locality weights a client holds or attache dumps."""
import collections
import threading
import time

from peers.grpc_peers import clients_of_node, debug_clients, nacks
from peers.util import Fatal, endpoints, wait_until


def zone_of(name):
    """Backends are named "<zone>#<n>": the zone of the backend that answered."""
    return name.split("#", 1)[0] if name else None


class Mesh:
    """Backends (HTTP or gRPC) in zones: {zone: (region, [backend, ...])}, and
    the host file entry of one service over all of them."""

    def __init__(self, factory, layout, service="echo", failover=None):
        """layout: {zone: (region or None, count)}; factory(name) -> a started
        backend."""
        self.service = service
        self.failover = failover
        self.zones = {}
        for zone, (region, count) in layout.items():
            self.zones[zone] = (region, [factory(f"{zone}#{i}") for i in range(1, count + 1)])

    def backends(self, zone):
        return self.zones[zone][1]

    def names(self, *zones):
        return {b.name for zone in zones for b in self.backends(zone)}

    def hits(self):
        """{zone: requests or calls served so far} from the backends' own counters."""
        return {zone: sum(getattr(b, "requests", getattr(b, "calls", 0)) for b in backends)
                for zone, (_, backends) in self.zones.items()}

    def hosts(self, unhealthy=(), removed=(), failover=None):
        """The host file's services: every backend of every zone not in
        `removed`, health unhealthy for the zones in `unhealthy`."""
        listed = []
        for zone, (region, backends) in self.zones.items():
            if zone in removed:
                continue
            fields = {"zone": zone} if region is None else {"region": region, "zone": zone}
            if zone in unhealthy:
                fields["health"] = "unhealthy"
            listed += endpoints(*[b.port for b in backends], **fields)
        service = {"endpoints": listed}
        policy = failover or self.failover
        if policy:
            service["failover"] = policy
        return {self.service: service}


# --- what a client holds ------------------------------------------------------
def _localities(cla):
    """[(zone, priority, locality weight, sorted ports)] of a CLA as JSON
    (attache's dump, Envoy's config_dump) or as a ClusterLoadAssignment."""
    out = []
    if isinstance(cla, dict):
        for group in cla.get("endpoints", []):
            ports = sorted(int(e["endpoint"]["address"]["socket_address"]["port_value"])
                           for e in group.get("lb_endpoints", []))
            weight = group.get("load_balancing_weight")
            out.append((group.get("locality", {}).get("zone", ""), int(group.get("priority", 0)),
                        int(weight) if weight is not None else None, ports))
    else:
        for group in cla.endpoints:
            ports = sorted(e.endpoint.address.socket_address.port_value
                           for e in group.lb_endpoints)
            weight = (group.load_balancing_weight.value
                      if group.HasField("load_balancing_weight") else None)
            out.append((group.locality.zone, group.priority, weight, ports))
    return out


def priorities(cla):
    """{zone: priority} of a CLA (JSON or proto); asserts one priority per zone."""
    found = {}
    for zone, priority, _, _ in _localities(cla):
        assert found.get(zone, priority) == priority, (zone, _localities(cla))
        found[zone] = priority
    return found


def locality_weights(cla):
    """{zone: summed locality weight} of a CLA (JSON or proto)."""
    found = collections.Counter()
    for zone, _, weight, _ in _localities(cla):
        found[zone] += weight or 0
    return dict(found)


def envoy_cla(envoy, cluster="echo"):
    entry = envoy.endpoint_configs().get(cluster)
    return None if entry is None else entry["endpoint_config"]


def wait_for_envoy_priorities(envoy, expected, cluster="echo", timeout=15):
    """Polls Envoy's EDS config_dump until {zone: priority} is `expected`."""
    last = {}

    def check():
        cla = envoy_cla(envoy, cluster)
        last["cla"] = cla
        return cla is not None and priorities(cla) == expected
    try:
        wait_until(check, timeout=timeout, what=f"envoy {envoy.node_id} to hold priorities "
                                                f"{expected} for {cluster}")
    except AssertionError as error:
        held = priorities(last["cla"]) if last.get("cla") else None
        raise AssertionError(f"{error}; it holds {held}") from None


def assert_envoy_accepted_everything(envoy, attache):
    """Envoy rejected no update (CDS, any EDS) and attache recorded no NACK."""
    rejected = {name: value for name, value in envoy.stats("update_rejected").items()
                if name.endswith("update_rejected")}
    assert rejected and all(value == 0 for value in rejected.values()), rejected
    assert_attache_saw_no_nack(attache, envoy.node_id)


def assert_attache_saw_no_nack(attache, node_id, types=None):
    """attache's /debug/clients lists node_id (with `types`, if given) and
    nack_count 0 for every type it subscribed to; returns its entries."""
    def listed():
        found = clients_of_node(attache.admin_url, node_id)
        if types:
            found = [c for c in found if set(types) <= set(c.get("types", {}))]
        return found
    try:
        entries = wait_until(listed, timeout=10, what=f"/debug/clients to list {node_id}")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{debug_clients(attache.admin_url)}") from None
    for entry in entries:
        for type_url, state in entry.get("types", {}).items():
            assert "nack_count" in state, (type_url, state)
        assert not nacks(entry), f"{node_id} NACKed: {entry}"
    return entries


# --- traffic ------------------------------------------------------------------
class RequestLoop:
    """Requests through Envoy's listener one after another in a thread;
    results are (status, body or error). Bounded in count and time."""

    def __init__(self, envoy, max_requests=50000, max_seconds=120):
        self.envoy = envoy
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._max_requests = max_requests
        self._max_seconds = max_seconds
        self._thread = threading.Thread(target=self._run, daemon=True, name="request-loop")
        self._thread.start()

    def _run(self):
        deadline = time.monotonic() + self._max_seconds
        while (not self._stop.is_set() and len(self.results) < self._max_requests
               and time.monotonic() < deadline):
            try:
                result = self.envoy.request(timeout=10)
            except Exception as error:  # a failed request is a result too
                result = (None, repr(error))
            with self._lock:
                self.results.append(result)

    def snapshot(self):
        with self._lock:
            return list(self.results)

    def mark(self):
        return len(self.snapshot())

    def wait_for(self, predicate, timeout=30, what="requests"):
        def check():
            if not self._thread.is_alive():
                raise Fatal("the request loop stopped (count or time bound)")
            return predicate(self.snapshot())
        return wait_until(check, timeout=timeout, what=what)

    def wait_count(self, count, what=None):
        return self.wait_for(lambda results: len(results) >= count, timeout=60,
                             what=what or f"{count} requests in all")

    def first_from(self, start, names, timeout=20):
        """Index of the first result at or after `start` answered by one of
        names (waits for it)."""
        def find(results):
            for index in range(start, len(results)):
                if results[index][0] == 200 and results[index][1] in names:
                    return (index,)
            return None
        return self.wait_for(find, timeout=timeout,
                             what=f"a request answered by one of {sorted(names)}")[0]

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=20)
        return self.snapshot()


def failures(results, names):
    """Results that are not a 200 answered by one of names."""
    return [r for r in results if r[0] != 200 or r[1] not in names]


def zone_counts(bodies):
    """{zone: count} of answers (bodies or (status, body) results)."""
    counts = collections.Counter()
    for item in bodies:
        body = item[1] if isinstance(item, tuple) else item
        counts[zone_of(body)] += 1
    return dict(counts)
