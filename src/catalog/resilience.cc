#include "catalog/resilience.h"

namespace attache {
namespace {

template <typename T>
void Fill(std::optional<T>& top, const std::optional<T>& base) {
  if (!top) {
    top = base;
  }
}

ResilienceSettings MakeBuiltIn() {
  using std::chrono::milliseconds;
  ResilienceSettings out;
  OutlierDetectionSettings& outlier = out.outlier_detection;
  outlier.enabled = true;
  outlier.consecutive_5xx = 5;
  outlier.consecutive_gateway_failure = 3;
  // Three refused or timed-out connections in a row: a dead host leaves
  // within a few requests, and a host that drops one connection stays.
  outlier.consecutive_local_origin_failure = 3;
  outlier.failure_percentage_threshold = 50;
  outlier.failure_percentage_minimum_hosts = 1;
  outlier.failure_percentage_request_volume = 10;
  // Ejections are lifted on this tick, and gRPC only ejects on it.
  outlier.interval = milliseconds(1'000);
  outlier.base_ejection_time = milliseconds(10'000);
  outlier.max_ejection_time = milliseconds(60'000);
  // A dead cluster is many hosts at once: any cap keeps some of them in
  // rotation.
  outlier.max_ejection_percent = 100;

  HealthCheckSettings& check = out.health_check;
  check.type = HealthCheckType::kNone;
  check.path = "/healthz";
  check.service_name = "";
  check.interval = milliseconds(5'000);
  check.timeout = milliseconds(1'000);
  check.unhealthy_threshold = 2;
  check.healthy_threshold = 1;
  check.no_traffic_interval = milliseconds(60'000);

  CircuitBreakerSettings& breakers = out.circuit_breakers;
  // As Istio does: the route's num_retries bounds retries per request. A
  // budget sheds failover retries even at 100 % (docs/resilience.md).
  breakers.max_retries = UINT32_MAX;
  breakers.retry_budget_percent = 0;
  breakers.min_retry_concurrency = 10;

  RetrySettings& retry = out.retry_policy;
  retry.retry_on = "connect-failure,refused-stream,unavailable,cancelled";
  retry.num_retries = 2;
  retry.base_interval = milliseconds(25);
  retry.max_interval = milliseconds(250);

  // Panic mode would send traffic to every host, dead ones included, as
  // soon as fewer than this share look healthy: off, as Istio does.
  out.healthy_panic_threshold = 0;
  out.overprovisioning_factor = 140;
  return out;
}

}  // namespace

std::optional<HealthCheckType> ParseHealthCheckType(std::string_view text) {
  if (text == "none") return HealthCheckType::kNone;
  if (text == "http") return HealthCheckType::kHttp;
  if (text == "grpc") return HealthCheckType::kGrpc;
  if (text == "tcp") return HealthCheckType::kTcp;
  return std::nullopt;
}

std::string_view HealthCheckTypeName(HealthCheckType type) {
  switch (type) {
    case HealthCheckType::kNone:
      return "none";
    case HealthCheckType::kHttp:
      return "http";
    case HealthCheckType::kGrpc:
      return "grpc";
    case HealthCheckType::kTcp:
      return "tcp";
  }
  return "none";
}

ResilienceSettings Overlay(ResilienceSettings top,
                           const ResilienceSettings& base) {
  OutlierDetectionSettings& o = top.outlier_detection;
  const OutlierDetectionSettings& bo = base.outlier_detection;
  Fill(o.enabled, bo.enabled);
  Fill(o.consecutive_5xx, bo.consecutive_5xx);
  Fill(o.consecutive_gateway_failure, bo.consecutive_gateway_failure);
  Fill(o.consecutive_local_origin_failure, bo.consecutive_local_origin_failure);
  Fill(o.failure_percentage_threshold, bo.failure_percentage_threshold);
  Fill(o.failure_percentage_minimum_hosts, bo.failure_percentage_minimum_hosts);
  Fill(o.failure_percentage_request_volume,
       bo.failure_percentage_request_volume);
  Fill(o.interval, bo.interval);
  Fill(o.base_ejection_time, bo.base_ejection_time);
  Fill(o.max_ejection_time, bo.max_ejection_time);
  Fill(o.max_ejection_percent, bo.max_ejection_percent);

  HealthCheckSettings& h = top.health_check;
  const HealthCheckSettings& bh = base.health_check;
  Fill(h.type, bh.type);
  Fill(h.path, bh.path);
  Fill(h.service_name, bh.service_name);
  Fill(h.interval, bh.interval);
  Fill(h.timeout, bh.timeout);
  Fill(h.unhealthy_threshold, bh.unhealthy_threshold);
  Fill(h.healthy_threshold, bh.healthy_threshold);
  Fill(h.no_traffic_interval, bh.no_traffic_interval);

  CircuitBreakerSettings& c = top.circuit_breakers;
  const CircuitBreakerSettings& bc = base.circuit_breakers;
  Fill(c.max_connections, bc.max_connections);
  Fill(c.max_pending_requests, bc.max_pending_requests);
  Fill(c.max_requests, bc.max_requests);
  Fill(c.max_retries, bc.max_retries);
  Fill(c.retry_budget_percent, bc.retry_budget_percent);
  Fill(c.min_retry_concurrency, bc.min_retry_concurrency);

  RetrySettings& r = top.retry_policy;
  const RetrySettings& br = base.retry_policy;
  Fill(r.retry_on, br.retry_on);
  Fill(r.num_retries, br.num_retries);
  Fill(r.base_interval, br.base_interval);
  Fill(r.max_interval, br.max_interval);

  Fill(top.healthy_panic_threshold, base.healthy_panic_threshold);
  Fill(top.overprovisioning_factor, base.overprovisioning_factor);
  return top;
}

const ResilienceSettings& BuiltInResilience() {
  static const ResilienceSettings kBuiltIn = MakeBuiltIn();
  return kBuiltIn;
}

}  // namespace attache
