#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace attache {

// How clients find out for themselves that endpoints are dead. The control
// plane cannot see a whole cluster die (its API server dies with it, so its
// endpoints stay as last known good); the clients can, from their own
// traffic and probes. Every field is optional so that a service, a source
// and the defaults can each set some of them: unset ones come from the next
// level (see Overlay), and the built-in defaults (BuiltInResilience) set all.

// Envoy outlier detection; gRPC clients read the failure-percentage fields
// and the ejection times (gRFC A50).
struct OutlierDetectionSettings {
  std::optional<bool> enabled;
  // Zero turns a detector off.
  std::optional<uint32_t> consecutive_5xx;
  std::optional<uint32_t> consecutive_gateway_failure;
  // Connection failures, resets and timeouts, counted apart from the
  // responses (split_external_local_origin_errors).
  std::optional<uint32_t> consecutive_local_origin_failure;
  std::optional<uint32_t> failure_percentage_threshold;
  std::optional<uint32_t> failure_percentage_minimum_hosts;
  std::optional<uint32_t> failure_percentage_request_volume;
  std::optional<std::chrono::milliseconds> interval;
  std::optional<std::chrono::milliseconds> base_ejection_time;
  std::optional<std::chrono::milliseconds> max_ejection_time;
  std::optional<uint32_t> max_ejection_percent;

  bool operator==(const OutlierDetectionSettings&) const = default;
};

enum class HealthCheckType { kNone, kHttp, kGrpc, kTcp };
std::optional<HealthCheckType> ParseHealthCheckType(std::string_view text);
std::string_view HealthCheckTypeName(HealthCheckType type);

// Envoy active health checks (gRPC clients have none in xDS).
struct HealthCheckSettings {
  std::optional<HealthCheckType> type;
  std::optional<std::string> path;          // http
  std::optional<std::string> service_name;  // grpc
  std::optional<std::chrono::milliseconds> interval;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<uint32_t> unhealthy_threshold;
  std::optional<uint32_t> healthy_threshold;
  std::optional<std::chrono::milliseconds> no_traffic_interval;

  bool operator==(const HealthCheckSettings&) const = default;
};

// Envoy circuit breakers (default priority). Unset limits keep Envoy's own.
struct CircuitBreakerSettings {
  std::optional<uint32_t> max_connections;
  std::optional<uint32_t> max_pending_requests;
  std::optional<uint32_t> max_requests;
  // Concurrent retries per cluster. Envoy's own 3 sheds the retries a
  // failover needs: every request of a dead zone wants one at once.
  std::optional<uint32_t> max_retries;
  // Set: retries may be this share of the active requests instead (Envoy
  // then ignores max_retries); zero: no budget.
  std::optional<uint32_t> retry_budget_percent;
  std::optional<uint32_t> min_retry_concurrency;

  bool operator==(const CircuitBreakerSettings&) const = default;
};

// The route retry policy served to proxyless gRPC clients (gRFC A44).
struct RetrySettings {
  std::optional<std::string> retry_on;
  std::optional<uint32_t> num_retries;  // zero: no retry policy
  std::optional<std::chrono::milliseconds> base_interval;
  std::optional<std::chrono::milliseconds> max_interval;

  bool operator==(const RetrySettings&) const = default;
};

struct ResilienceSettings {
  OutlierDetectionSettings outlier_detection;
  HealthCheckSettings health_check;
  CircuitBreakerSettings circuit_breakers;
  RetrySettings retry_policy;
  std::optional<uint32_t> healthy_panic_threshold;  // percent
  std::optional<uint32_t> overprovisioning_factor;  // percent, Envoy's 140

  bool operator==(const ResilienceSettings&) const = default;
};

// Fills every field `top` leaves unset from `base`.
ResilienceSettings Overlay(ResilienceSettings top,
                           const ResilienceSettings& base);

// The defaults that keep the promise without tuning: every field set
// (docs/configuration.md#resilience says why each value).
const ResilienceSettings& BuiltInResilience();

}  // namespace attache
