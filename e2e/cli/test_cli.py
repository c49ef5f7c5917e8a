"""The command line: validate, dump, version and help."""
import json
import os
import pathlib
import queue
import subprocess

import grpc
import yaml
from google.protobuf import json_format
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
# Registered for the Any fields inside Listeners (json_format looks them up).
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: F401
    http_connection_manager_pb2)
# ... and inside Clusters (the load-balancing policy list of gRPC clients).
from envoy.extensions.load_balancing_policies.round_robin.v3 import (  # noqa: F401
    round_robin_pb2)
from envoy.extensions.load_balancing_policies.wrr_locality.v3 import (  # noqa: F401
    wrr_locality_pb2)

from peers.util import endpoints

ATTACHE_BIN = os.environ.get(
    "ATTACHE_BIN", str(pathlib.Path(__file__).resolve().parents[2] / "build" / "attache"))

CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
MESSAGES = {CDS: cluster_pb2.Cluster, EDS: endpoint_pb2.ClusterLoadAssignment,
            LDS: listener_pb2.Listener, RDS: route_pb2.RouteConfiguration}

SERVICES = {
    "echo": {"endpoints": endpoints(8081, 8082, zone="z1")},
    "billing": {"lb_policy": "RING_HASH", "endpoints": endpoints(8083)},
}


def run(*args):
    return subprocess.run([ATTACHE_BIN, *args], capture_output=True, text=True, timeout=30)


def test_version_and_help():
    assert run("version").stdout.startswith("attache ")
    for command in ("serve", "validate", "dump"):
        result = run(command, "--help")
        assert result.returncode == 0
        assert "--config" in result.stdout


def test_validate_accepts_a_good_config(attache_factory):
    attache = attache_factory(SERVICES, start=False)
    result = run("validate", "--config", str(attache.config_path))
    assert result.returncode == 0, result.stderr
    assert "ok (1 sources)" in result.stdout


def test_validate_names_file_key_and_problem(attache_factory):
    attache = attache_factory(SERVICES, start=False)
    config = yaml.safe_load(attache.config_path.read_text())
    config["defaults"] = {"lb_policy": "FASTEST"}
    attache.config_path.write_text(yaml.safe_dump(config))
    result = run("validate", "--config", str(attache.config_path))
    assert result.returncode == 1
    assert (f"{attache.config_path}: defaults.lb_policy: must be ROUND_ROBIN, "
            f"LEAST_REQUEST or RING_HASH, got \"FASTEST\"") in result.stderr


def test_validate_checks_host_files_too(attache_factory):
    attache = attache_factory(SERVICES, start=False)
    attache.write_hosts({"echo": {"endpoints": [{"address": "127.0.0.1", "port": 0}]}})
    result = run("validate", "--config", str(attache.config_path))
    assert result.returncode == 1
    assert "hosts.yaml: services.echo.endpoints[0].port: must be between 1 and 65535" in result.stderr


def test_serve_refuses_a_bad_config_with_exit_1(attache_factory):
    attache = attache_factory(SERVICES, start=False)
    attache.config_path.write_text("xds: {listen: nowhere}\nsources: []\n")
    result = run("serve", "--config", str(attache.config_path))
    assert result.returncode == 1
    assert "xds.listen: must be host:port" in result.stderr


def ads_state(address, node, types):
    """What a fresh ADS stream receives for `types` (subscribing EDS/RDS to
    everything named in CDS/LDS), as {type_url: (version_info, {name: msg})}."""
    requests = queue.Queue()
    channel = grpc.insecure_channel(address)
    stream = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(
        iter(requests.get, None))
    state = {}

    def fetch(type_url, names):
        request = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=names)
        request.node.CopyFrom(node)
        requests.put(request)
        response = next(stream)
        assert response.type_url == type_url
        resources = {}
        for any_resource in response.resources:
            message = MESSAGES[type_url].FromString(any_resource.value)
            name = message.cluster_name if type_url == EDS else message.name
            resources[name] = message
        state[type_url] = (response.version_info, resources)
        requests.put(discovery_pb2.DiscoveryRequest(
            type_url=type_url, resource_names=names, version_info=response.version_info,
            response_nonce=response.nonce))

    fetch(CDS, [])
    fetch(EDS, sorted(state[CDS][1]))
    if LDS in types:
        fetch(LDS, [])
        fetch(RDS, sorted(state[LDS][1]))
    requests.put(None)
    channel.close()
    return state


def dump(attache, *args):
    result = run("dump", "--config", str(attache.config_path), "--node-id", "n1", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def check_dump_equals_wire(dumped, wire):
    for type_url, (version, resources) in wire.items():
        entry = dumped["resources"][type_url]
        assert entry["version_info"] == version
        decoded = {}
        for item in entry["resources"]:
            item = dict(item)
            assert item.pop("@type") == type_url
            message = json_format.ParseDict(item, MESSAGES[type_url]())
            name = message.cluster_name if type_url == EDS else message.name
            decoded[name] = message
        assert decoded == resources


def test_dump_prints_exactly_what_an_envoy_node_receives(attache_factory):
    attache = attache_factory(SERVICES)
    node = discovery_pb2.DiscoveryRequest().node
    node.id, node.user_agent_name = "n1", "envoy"
    wire = ads_state(attache.xds_address, node, [CDS, EDS])
    dumped = json.loads(dump(attache))
    assert dumped["view"]["flavor"] == "envoy"
    assert dumped["resources"][LDS]["resources"] == []
    assert set(wire[CDS][1]) == {"echo", "billing"}
    check_dump_equals_wire(dumped, wire)


def test_dump_prints_exactly_what_a_grpc_node_receives_in_yaml(attache_factory):
    attache = attache_factory(SERVICES)
    node = discovery_pb2.DiscoveryRequest().node
    node.id, node.user_agent_name = "n1", "gRPC C-core"
    wire = ads_state(attache.xds_address, node, [CDS, EDS, LDS, RDS])
    dumped = yaml.safe_load(dump(attache, "--user-agent", "gRPC C-core", "--zone", "z1",
                                 "--format", "yaml"))
    assert dumped["view"]["flavor"] == "grpc"
    assert dumped["node"]["locality"]["zone"] == "z1"
    assert set(wire[LDS][1]) == {"echo", "billing"}
    check_dump_equals_wire(dumped, wire)
