#include "config/service_yaml.h"

#include <string>

namespace attache {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kHour{3'600'000};

std::optional<uint32_t> Uint(const YAML::Node& map, std::string_view key,
                             const YamlPath& where, uint64_t min,
                             uint64_t max) {
  auto value = OptionalUint(map, key, where, min, max);
  if (!value) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(*value);
}

std::optional<milliseconds> Duration(const YAML::Node& map,
                                     std::string_view key,
                                     const YamlPath& where, milliseconds min) {
  return OptionalDuration(map, key, where, min, kHour);
}

std::optional<bool> Bool(const YAML::Node& map, std::string_view key,
                         const YamlPath& where) {
  auto text = OptionalString(map, key, where);
  if (!text) {
    return std::nullopt;
  }
  if (*text == "true") return true;
  if (*text == "false") return false;
  where.Key(key).Fail("must be true or false, got \"" + *text + "\"");
}

OutlierDetectionSettings ParseOutlier(const YAML::Node& node,
                                      const YamlPath& where) {
  ExpectMap(
      node, where,
      {"enabled", "consecutive_5xx", "consecutive_gateway_failure",
       "consecutive_local_origin_failure", "failure_percentage_threshold",
       "failure_percentage_minimum_hosts", "failure_percentage_request_volume",
       "interval", "base_ejection_time", "max_ejection_time",
       "max_ejection_percent"});
  OutlierDetectionSettings out;
  out.enabled = Bool(node, "enabled", where);
  out.consecutive_5xx = Uint(node, "consecutive_5xx", where, 0, 1'000);
  out.consecutive_gateway_failure =
      Uint(node, "consecutive_gateway_failure", where, 0, 1'000);
  out.consecutive_local_origin_failure =
      Uint(node, "consecutive_local_origin_failure", where, 0, 1'000);
  out.failure_percentage_threshold =
      Uint(node, "failure_percentage_threshold", where, 0, 100);
  out.failure_percentage_minimum_hosts =
      Uint(node, "failure_percentage_minimum_hosts", where, 1, 100'000);
  out.failure_percentage_request_volume =
      Uint(node, "failure_percentage_request_volume", where, 1, 1'000'000);
  out.interval = Duration(node, "interval", where, milliseconds(100));
  out.base_ejection_time =
      Duration(node, "base_ejection_time", where, milliseconds(100));
  out.max_ejection_time =
      Duration(node, "max_ejection_time", where, milliseconds(100));
  out.max_ejection_percent = Uint(node, "max_ejection_percent", where, 0, 100);
  return out;
}

HealthCheckSettings ParseHealthCheck(const YAML::Node& node,
                                     const YamlPath& where) {
  ExpectMap(
      node, where,
      {"type", "path", "service_name", "interval", "timeout",
       "unhealthy_threshold", "healthy_threshold", "no_traffic_interval"});
  HealthCheckSettings out;
  if (auto type = OptionalString(node, "type", where)) {
    out.type = ParseHealthCheckType(*type);
    if (!out.type) {
      where.Key("type").Fail("must be none, http, grpc or tcp, got \"" + *type +
                             "\"");
    }
  }
  out.path = OptionalString(node, "path", where);
  if (out.path && (out.path->empty() || out.path->front() != '/')) {
    where.Key("path").Fail("must start with '/', got \"" + *out.path + "\"");
  }
  out.service_name = OptionalString(node, "service_name", where);
  out.interval = Duration(node, "interval", where, milliseconds(100));
  out.timeout = Duration(node, "timeout", where, milliseconds(10));
  out.unhealthy_threshold = Uint(node, "unhealthy_threshold", where, 1, 1'000);
  out.healthy_threshold = Uint(node, "healthy_threshold", where, 1, 1'000);
  out.no_traffic_interval =
      Duration(node, "no_traffic_interval", where, milliseconds(100));
  return out;
}

CircuitBreakerSettings ParseBreakers(const YAML::Node& node,
                                     const YamlPath& where) {
  ExpectMap(node, where,
            {"max_connections", "max_pending_requests", "max_requests",
             "max_retries", "retry_budget"});
  CircuitBreakerSettings out;
  constexpr uint64_t kMax = UINT32_MAX;
  out.max_connections = Uint(node, "max_connections", where, 1, kMax);
  out.max_pending_requests = Uint(node, "max_pending_requests", where, 1, kMax);
  out.max_requests = Uint(node, "max_requests", where, 1, kMax);
  out.max_retries = Uint(node, "max_retries", where, 0, kMax);
  if (const YAML::Node budget = node["retry_budget"]) {
    const YamlPath at = where.Key("retry_budget");
    ExpectMap(budget, at, {"budget_percent", "min_retry_concurrency"});
    out.retry_budget_percent = Uint(budget, "budget_percent", at, 0, 100);
    out.min_retry_concurrency =
        Uint(budget, "min_retry_concurrency", at, 0, 100'000);
  }
  return out;
}

RetrySettings ParseRetry(const YAML::Node& node, const YamlPath& where) {
  ExpectMap(node, where,
            {"retry_on", "num_retries", "base_interval", "max_interval"});
  RetrySettings out;
  out.retry_on = OptionalString(node, "retry_on", where);
  if (out.retry_on && out.retry_on->empty()) {
    where.Key("retry_on").Fail("must name at least one condition");
  }
  // gRPC makes at most 5 attempts.
  out.num_retries = Uint(node, "num_retries", where, 0, 4);
  out.base_interval = Duration(node, "base_interval", where, milliseconds(1));
  out.max_interval = Duration(node, "max_interval", where, milliseconds(1));
  return out;
}

}  // namespace

ResilienceSettings ParseResilience(const YAML::Node& map,
                                   const YamlPath& where) {
  ResilienceSettings out;
  if (const YAML::Node node = map["outlier_detection"]) {
    out.outlier_detection = ParseOutlier(node, where.Key("outlier_detection"));
  }
  if (const YAML::Node node = map["health_check"]) {
    out.health_check = ParseHealthCheck(node, where.Key("health_check"));
  }
  if (const YAML::Node node = map["circuit_breakers"]) {
    out.circuit_breakers = ParseBreakers(node, where.Key("circuit_breakers"));
  }
  if (const YAML::Node node = map["retry_policy"]) {
    out.retry_policy = ParseRetry(node, where.Key("retry_policy"));
  }
  out.healthy_panic_threshold =
      Uint(map, "healthy_panic_threshold", where, 0, 100);
  // Envoy's own bound: a factor of 1 to 100 (100 to 10,000 percent).
  out.overprovisioning_factor =
      Uint(map, "overprovisioning_factor", where, 100, 10'000);
  return out;
}

ServiceSettings ParseServiceSettings(const YAML::Node& map,
                                     const YamlPath& where) {
  ServiceSettings settings;
  settings.connect_timeout =
      Duration(map, "connect_timeout", where, milliseconds(1));
  if (auto policy = OptionalString(map, "lb_policy", where)) {
    settings.lb_policy = ParseLbPolicy(*policy);
    if (!settings.lb_policy) {
      where.Key("lb_policy")
          .Fail("must be ROUND_ROBIN, LEAST_REQUEST or RING_HASH, got \"" +
                *policy + "\"");
    }
  }
  if (auto failover = OptionalString(map, "failover", where)) {
    settings.failover = ParseFailoverPolicy(*failover);
    if (!settings.failover) {
      where.Key("failover")
          .Fail("must be flat, zone-failover or weighted, got \"" + *failover +
                "\"");
    }
  }
  settings.resilience = ParseResilience(map, where);
  return settings;
}

ResilienceSettings ParseResilienceText(std::string_view text,
                                       const std::string& where) {
  const YamlPath root(where);
  const YAML::Node doc = LoadYaml(where, std::string(text));
  ExpectMap(doc, root, kResilienceKeys);
  return ParseResilience(doc, root);
}

}  // namespace attache
