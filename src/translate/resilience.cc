#include "translate/resilience.h"

#include "envoy/extensions/load_balancing_policies/least_request/v3/least_request.pb.h"
#include "envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.pb.h"
#include "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.pb.h"
#include "envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"

namespace attache {
namespace {

namespace cluster_v3 = envoy::config::cluster::v3;
namespace core_v3 = envoy::config::core::v3;
namespace lb_v3 = envoy::extensions::load_balancing_policies;

using Field =
    google::protobuf::UInt32Value* (cluster_v3::OutlierDetection::*)();

// A detector with a threshold of zero is off: Envoy would otherwise keep its
// own default threshold, enforced.
void SetDetector(uint32_t threshold, cluster_v3::OutlierDetection* out,
                 Field value, Field enforcing) {
  if (threshold > 0) {
    (out->*value)()->set_value(threshold);
  }
  (out->*enforcing)()->set_value(threshold > 0 ? 100 : 0);
}

void AddOutlierDetection(const OutlierDetectionSettings& s, Flavor flavor,
                         cluster_v3::OutlierDetection* out) {
  if (flavor == Flavor::kEnvoy) {
    // gRPC reads none of these (it ejects on failure rates only).
    out->set_split_external_local_origin_errors(true);
    using O = cluster_v3::OutlierDetection;
    SetDetector(*s.consecutive_5xx, out, &O::mutable_consecutive_5xx,
                &O::mutable_enforcing_consecutive_5xx);
    SetDetector(*s.consecutive_gateway_failure, out,
                &O::mutable_consecutive_gateway_failure,
                &O::mutable_enforcing_consecutive_gateway_failure);
    SetDetector(*s.consecutive_local_origin_failure, out,
                &O::mutable_consecutive_local_origin_failure,
                &O::mutable_enforcing_consecutive_local_origin_failure);
  }
  SetDuration(*s.interval, out->mutable_interval());
  SetDuration(*s.base_ejection_time, out->mutable_base_ejection_time());
  SetDuration(*s.max_ejection_time, out->mutable_max_ejection_time());
  out->mutable_max_ejection_percent()->set_value(*s.max_ejection_percent);
  const uint32_t threshold = *s.failure_percentage_threshold;
  if (threshold > 0) {
    out->mutable_failure_percentage_threshold()->set_value(threshold);
    out->mutable_failure_percentage_minimum_hosts()->set_value(
        *s.failure_percentage_minimum_hosts);
    out->mutable_failure_percentage_request_volume()->set_value(
        *s.failure_percentage_request_volume);
  }
  out->mutable_enforcing_failure_percentage()->set_value(threshold > 0 ? 100
                                                                       : 0);
}

void AddHealthCheck(const HealthCheckSettings& s,
                    cluster_v3::Cluster* cluster) {
  auto* check = cluster->add_health_checks();
  SetDuration(*s.timeout, check->mutable_timeout());
  SetDuration(*s.interval, check->mutable_interval());
  SetDuration(*s.no_traffic_interval, check->mutable_no_traffic_interval());
  check->mutable_unhealthy_threshold()->set_value(*s.unhealthy_threshold);
  check->mutable_healthy_threshold()->set_value(*s.healthy_threshold);
  switch (*s.type) {
    case HealthCheckType::kHttp:
      check->mutable_http_health_check()->set_path(*s.path);
      break;
    case HealthCheckType::kGrpc: {
      check->mutable_grpc_health_check()->set_service_name(*s.service_name);
      // Envoy refuses gRPC health checks over HTTP/1 (and a service checked
      // with gRPC speaks gRPC, so HTTP/2 anyway).
      envoy::extensions::upstreams::http::v3::HttpProtocolOptions options;
      options.mutable_explicit_http_config()->mutable_http2_protocol_options();
      (*cluster->mutable_typed_extension_protocol_options())
          ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
              .PackFrom(options);
      break;
    }
    case HealthCheckType::kTcp:
      check->mutable_tcp_health_check();
      break;
    case HealthCheckType::kNone:
      break;
  }
}

void AddCircuitBreakers(const CircuitBreakerSettings& s,
                        cluster_v3::Cluster* cluster) {
  auto* limits = cluster->mutable_circuit_breakers()->add_thresholds();
  limits->set_priority(core_v3::DEFAULT);
  if (s.max_connections) {
    limits->mutable_max_connections()->set_value(*s.max_connections);
  }
  if (s.max_pending_requests) {
    limits->mutable_max_pending_requests()->set_value(*s.max_pending_requests);
  }
  if (s.max_requests) {
    limits->mutable_max_requests()->set_value(*s.max_requests);
  }
  limits->mutable_max_retries()->set_value(*s.max_retries);
  if (*s.retry_budget_percent > 0) {
    auto* retry = limits->mutable_retry_budget();
    retry->mutable_budget_percent()->set_value(*s.retry_budget_percent);
    retry->mutable_min_retry_concurrency()->set_value(*s.min_retry_concurrency);
  }
}

void AddPolicy(const google::protobuf::Message& config, const char* name,
               cluster_v3::LoadBalancingPolicy* list) {
  auto* typed = list->add_policies()->mutable_typed_extension_config();
  typed->set_name(name);
  typed->mutable_typed_config()->PackFrom(config);
}

}  // namespace

void SetDuration(std::chrono::milliseconds value,
                 google::protobuf::Duration* duration) {
  duration->set_seconds(value.count() / 1000);
  duration->set_nanos(static_cast<int32_t>((value.count() % 1000) * 1'000'000));
}

void AddResilience(const ResilienceSettings& settings, Flavor flavor,
                   cluster_v3::Cluster* cluster) {
  if (*settings.outlier_detection.enabled) {
    AddOutlierDetection(settings.outlier_detection, flavor,
                        cluster->mutable_outlier_detection());
  }
  if (flavor == Flavor::kGrpc) {
    // gRPC has no active health checks in xDS, no panic mode, and of the
    // circuit breakers reads max_requests only.
    if (settings.circuit_breakers.max_requests) {
      auto* limits = cluster->mutable_circuit_breakers()->add_thresholds();
      limits->mutable_max_requests()->set_value(
          *settings.circuit_breakers.max_requests);
    }
    return;
  }
  if (*settings.health_check.type != HealthCheckType::kNone) {
    AddHealthCheck(settings.health_check, cluster);
  }
  AddCircuitBreakers(settings.circuit_breakers, cluster);
  cluster->mutable_common_lb_config()
      ->mutable_healthy_panic_threshold()
      ->set_value(*settings.healthy_panic_threshold);
}

void SetLbPolicy(LbPolicy policy, Flavor flavor, cluster_v3::Cluster* cluster) {
  switch (policy) {
    case LbPolicy::kRoundRobin:
      cluster->set_lb_policy(cluster_v3::Cluster::ROUND_ROBIN);
      break;
    case LbPolicy::kLeastRequest:
      cluster->set_lb_policy(flavor == Flavor::kGrpc
                                 ? cluster_v3::Cluster::ROUND_ROBIN
                                 : cluster_v3::Cluster::LEAST_REQUEST);
      break;
    case LbPolicy::kRingHash:
      cluster->set_lb_policy(cluster_v3::Cluster::RING_HASH);
      break;
  }
  if (flavor != Flavor::kGrpc) {
    return;
  }
  auto* list = cluster->mutable_load_balancing_policy();
  if (policy == LbPolicy::kRingHash) {
    // grpc-js takes XX_HASH only, not the default.
    lb_v3::ring_hash::v3::RingHash ring;
    ring.set_hash_function(lb_v3::ring_hash::v3::RingHash::XX_HASH);
    AddPolicy(ring, "envoy.load_balancing_policies.ring_hash", list);
    return;
  }
  // Locality weights are the wrr_locality policy's job in gRPC: its child
  // picks the endpoint within a locality, the first of the list the client
  // knows.
  lb_v3::wrr_locality::v3::WrrLocality locality;
  auto* picking = locality.mutable_endpoint_picking_policy();
  if (policy == LbPolicy::kLeastRequest) {
    AddPolicy(lb_v3::least_request::v3::LeastRequest(),
              "envoy.load_balancing_policies.least_request", picking);
  }
  AddPolicy(lb_v3::round_robin::v3::RoundRobin(),
            "envoy.load_balancing_policies.round_robin", picking);
  AddPolicy(locality, "envoy.load_balancing_policies.wrr_locality", list);
}

bool MakeRetryPolicy(const RetrySettings& settings,
                     envoy::config::route::v3::RetryPolicy* policy) {
  if (*settings.num_retries == 0) {
    return false;
  }
  policy->set_retry_on(*settings.retry_on);
  policy->mutable_num_retries()->set_value(*settings.num_retries);
  auto* backoff = policy->mutable_retry_back_off();
  SetDuration(*settings.base_interval, backoff->mutable_base_interval());
  SetDuration(std::max(*settings.max_interval, *settings.base_interval),
              backoff->mutable_max_interval());
  return true;
}

}  // namespace attache
