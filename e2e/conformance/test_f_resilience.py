"""The resilience attache serves with every cluster, decoded with the official
schemas (xds-protos): a wrong field number or type shows up here as a missing
or wrong value. Envoy and gRPC nodes each get what they read
(docs/resilience.md)."""
from envoy.config.route.v3 import route_components_pb2  # noqa: F401 (registers types)
from envoy.extensions.load_balancing_policies.least_request.v3 import least_request_pb2
from envoy.extensions.load_balancing_policies.ring_hash.v3 import ring_hash_pb2
from envoy.extensions.load_balancing_policies.round_robin.v3 import round_robin_pb2
from envoy.extensions.load_balancing_policies.wrr_locality.v3 import wrr_locality_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from ads_client import CLUSTER, ENDPOINT, ROUTE, by_name, envoy_node, grpc_node
from support import endpoints

TUNED = {
    "lb_policy": "LEAST_REQUEST",
    "outlier_detection": {"consecutive_5xx": 0, "consecutive_gateway_failure": 7,
                          "consecutive_local_origin_failure": 2, "interval": "1500ms",
                          "base_ejection_time": "5s", "max_ejection_time": "50s",
                          "max_ejection_percent": 40, "failure_percentage_threshold": 60,
                          "failure_percentage_minimum_hosts": 3,
                          "failure_percentage_request_volume": 20},
    "health_check": {"type": "grpc", "service_name": "tuned.v1", "interval": "3s",
                     "timeout": "250ms", "unhealthy_threshold": 4, "healthy_threshold": 2,
                     "no_traffic_interval": "30s"},
    "circuit_breakers": {"max_connections": 11, "max_pending_requests": 12, "max_requests": 13,
                         "retry_budget": {"budget_percent": 25, "min_retry_concurrency": 5}},
    "retry_policy": {"retry_on": "unavailable", "num_retries": 3, "base_interval": "10ms",
                     "max_interval": "1s"},
    "healthy_panic_threshold": 20,
    "overprovisioning_factor": 150,
}


def seconds(duration):
    return duration.seconds + duration.nanos / 1e9


def catalog():
    return {"plain": {"endpoints": endpoints(9001)},
            "tuned": dict(TUNED, endpoints=endpoints(9002)),
            "ring": {"lb_policy": "RING_HASH", "endpoints": endpoints(9003)}}


def clusters_of(attache, xds, node):
    stream = xds(attache, node)
    return by_name(stream.subscribe(CLUSTER))


def test_f01_envoy_defaults_decode_with_the_official_schema(attache_factory, xds):
    attache = attache_factory(catalog())
    plain = clusters_of(attache, xds, envoy_node())["plain"]
    outlier = plain.outlier_detection
    assert outlier.split_external_local_origin_errors
    assert outlier.consecutive_local_origin_failure.value == 3
    assert outlier.enforcing_consecutive_local_origin_failure.value == 100
    assert outlier.consecutive_5xx.value == 5
    assert outlier.consecutive_gateway_failure.value == 3
    assert outlier.enforcing_consecutive_gateway_failure.value == 100
    assert outlier.max_ejection_percent.value == 100
    assert seconds(outlier.interval) == 1.0
    assert seconds(outlier.base_ejection_time) == 10.0
    assert seconds(outlier.max_ejection_time) == 60.0
    assert outlier.failure_percentage_threshold.value == 50
    assert outlier.enforcing_failure_percentage.value == 100
    assert outlier.failure_percentage_minimum_hosts.value == 1
    assert outlier.failure_percentage_request_volume.value == 10
    (limits,) = plain.circuit_breakers.thresholds
    assert limits.priority == 0  # DEFAULT
    assert limits.max_retries.value == 2**32 - 1
    assert not limits.HasField("retry_budget")
    assert plain.common_lb_config.HasField("healthy_panic_threshold")
    assert plain.common_lb_config.healthy_panic_threshold.value == 0.0
    assert not plain.health_checks
    assert not plain.HasField("load_balancing_policy")


def test_f02_envoy_tuned_settings_decode(attache_factory, xds):
    attache = attache_factory(catalog())
    stream = xds(attache, envoy_node())
    tuned = by_name(stream.subscribe(CLUSTER))["tuned"]
    assert tuned.lb_policy == tuned.LEAST_REQUEST
    outlier = tuned.outlier_detection
    assert not outlier.HasField("consecutive_5xx")
    assert outlier.enforcing_consecutive_5xx.value == 0
    assert outlier.consecutive_gateway_failure.value == 7
    assert outlier.consecutive_local_origin_failure.value == 2
    assert seconds(outlier.interval) == 1.5
    assert seconds(outlier.base_ejection_time) == 5.0
    assert seconds(outlier.max_ejection_time) == 50.0
    assert outlier.max_ejection_percent.value == 40
    assert outlier.failure_percentage_threshold.value == 60
    assert outlier.failure_percentage_minimum_hosts.value == 3
    assert outlier.failure_percentage_request_volume.value == 20
    (check,) = tuned.health_checks
    assert check.grpc_health_check.service_name == "tuned.v1"
    assert seconds(check.interval) == 3.0 and seconds(check.timeout) == 0.25
    assert check.unhealthy_threshold.value == 4 and check.healthy_threshold.value == 2
    assert seconds(check.no_traffic_interval) == 30.0
    options = http_protocol_options_pb2.HttpProtocolOptions()
    assert tuned.typed_extension_protocol_options[
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Unpack(options)
    assert options.explicit_http_config.HasField("http2_protocol_options")
    (limits,) = tuned.circuit_breakers.thresholds
    assert (limits.max_connections.value, limits.max_pending_requests.value,
            limits.max_requests.value) == (11, 12, 13)
    assert limits.retry_budget.budget_percent.value == 25.0
    assert limits.retry_budget.min_retry_concurrency.value == 5
    assert tuned.common_lb_config.healthy_panic_threshold.value == 20.0

    cla = by_name(stream.subscribe(ENDPOINT, ["tuned", "plain"]))
    assert cla["tuned"].policy.overprovisioning_factor.value == 150
    assert not cla["plain"].HasField("policy")  # Envoy's own 140 is not sent


def test_f03_grpc_gets_what_it_reads(attache_factory, xds):
    attache = attache_factory(catalog())
    stream = xds(attache, grpc_node())
    found = by_name(stream.subscribe(CLUSTER, ["plain", "tuned", "ring"]))
    plain, tuned, ring = found["plain"], found["tuned"], found["ring"]
    outlier = plain.outlier_detection
    assert outlier.failure_percentage_threshold.value == 50
    assert outlier.enforcing_failure_percentage.value == 100
    assert outlier.max_ejection_percent.value == 100
    assert not outlier.HasField("consecutive_5xx")
    assert not outlier.split_external_local_origin_errors
    assert not plain.health_checks and not plain.HasField("circuit_breakers")
    assert not plain.HasField("common_lb_config")
    assert tuned.circuit_breakers.thresholds[0].max_requests.value == 13
    assert not tuned.health_checks

    # load_balancing_policy (gRFC A52): wrr_locality around the endpoint
    # pickers, least_request first for LEAST_REQUEST; the enum every gRPC
    # client accepts.
    def picking(cluster):
        (policy,) = cluster.load_balancing_policy.policies
        locality = wrr_locality_pb2.WrrLocality()
        assert policy.typed_extension_config.typed_config.Unpack(locality)
        return [p.typed_extension_config.typed_config.type_url.split("/")[-1]
                for p in locality.endpoint_picking_policy.policies]
    assert plain.lb_policy == plain.ROUND_ROBIN
    assert picking(plain) == [round_robin_pb2.RoundRobin.DESCRIPTOR.full_name]
    assert tuned.lb_policy == tuned.ROUND_ROBIN
    assert picking(tuned) == [least_request_pb2.LeastRequest.DESCRIPTOR.full_name,
                              round_robin_pb2.RoundRobin.DESCRIPTOR.full_name]
    assert ring.lb_policy == ring.RING_HASH
    (policy,) = ring.load_balancing_policy.policies
    hashing = ring_hash_pb2.RingHash()
    assert policy.typed_extension_config.typed_config.Unpack(hashing)
    assert hashing.hash_function == hashing.XX_HASH  # grpc-js takes no other

    # The route's retry policy (gRFC A44).
    routes = by_name(stream.subscribe(ROUTE, ["plain", "tuned"]))
    default = routes["plain"].virtual_hosts[0].routes[0].route.retry_policy
    assert default.retry_on == "connect-failure,refused-stream,unavailable,cancelled"
    assert default.num_retries.value == 2
    assert seconds(default.retry_back_off.base_interval) == 0.025
    assert seconds(default.retry_back_off.max_interval) == 0.25
    tuned_retry = routes["tuned"].virtual_hosts[0].routes[0].route.retry_policy
    assert (tuned_retry.retry_on, tuned_retry.num_retries.value) == ("unavailable", 3)
    assert seconds(tuned_retry.retry_back_off.max_interval) == 1.0
