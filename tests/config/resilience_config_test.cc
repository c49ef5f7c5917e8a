#include <gtest/gtest.h>

#include "config/config.h"
#include "config/config_error.h"
#include "config/service_yaml.h"
#include "sources/file/host_file.h"
#include "sources/kubernetes/endpoints_builder.h"

namespace attache {
namespace {

using std::chrono::milliseconds;

std::string ErrorOf(const std::string& text) {
  try {
    ParseConfig("/etc/attache.yaml", text);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

constexpr const char* kSources = R"(
xds: {listen: "127.0.0.1:18000"}
sources: [{name: hosts, type: file, path: hosts.yaml}]
)";

TEST(ResilienceConfig, DefaultsAreTheBuiltInOnes) {
  const Config config = ParseConfig("/etc/attache.yaml", kSources);
  EXPECT_EQ(config.defaults.resilience, BuiltInResilience());
  EXPECT_TRUE(*config.defaults.resilience.outlier_detection.enabled);
}

TEST(ResilienceConfig, DefaultsOverrideFieldByField) {
  const Config config = ParseConfig("/etc/attache.yaml", std::string(kSources) +
                                                             R"(
defaults:
  failover: zone-failover
  outlier_detection: {consecutive_5xx: 0, base_ejection_time: 30s}
  health_check: {type: grpc, service_name: web, interval: 2s}
  circuit_breakers: {max_requests: 100, retry_budget: {budget_percent: 20}}
  retry_policy: {num_retries: 3, retry_on: "unavailable"}
  healthy_panic_threshold: 10
  overprovisioning_factor: 200
)");
  const ResilienceSettings& r = config.defaults.resilience;
  EXPECT_EQ(config.defaults.failover, FailoverPolicy::kZoneFailover);
  EXPECT_EQ(*r.outlier_detection.consecutive_5xx, 0U);
  EXPECT_EQ(*r.outlier_detection.base_ejection_time, milliseconds(30'000));
  EXPECT_EQ(*r.outlier_detection.consecutive_local_origin_failure, 3U);
  EXPECT_EQ(*r.health_check.type, HealthCheckType::kGrpc);
  EXPECT_EQ(*r.health_check.service_name, "web");
  EXPECT_EQ(*r.health_check.interval, milliseconds(2'000));
  EXPECT_EQ(*r.health_check.timeout, milliseconds(1'000));
  EXPECT_EQ(*r.circuit_breakers.max_requests, 100U);
  EXPECT_EQ(*r.circuit_breakers.retry_budget_percent, 20U);
  EXPECT_EQ(*r.circuit_breakers.min_retry_concurrency, 10U);
  EXPECT_EQ(*r.retry_policy.num_retries, 3U);
  EXPECT_EQ(*r.retry_policy.retry_on, "unavailable");
  EXPECT_EQ(*r.healthy_panic_threshold, 10U);
  EXPECT_EQ(*r.overprovisioning_factor, 200U);
}

TEST(ResilienceConfig, ErrorsNameFileKeyAndProblem) {
  const std::string base = kSources;
  EXPECT_EQ(ErrorOf(base + "defaults: {outlier_detection: {max_ejection_"
                           "percent: 101}}\n"),
            "/etc/attache.yaml: defaults.outlier_detection."
            "max_ejection_percent: must be between 0 and 100, got 101");
  EXPECT_EQ(ErrorOf(base + "defaults: {health_check: {type: udp}}\n"),
            "/etc/attache.yaml: defaults.health_check.type: must be none, "
            "http, grpc or tcp, got \"udp\"");
  EXPECT_EQ(ErrorOf(base + "defaults: {health_check: {path: ready}}\n"),
            "/etc/attache.yaml: defaults.health_check.path: must start with "
            "'/', got \"ready\"");
  EXPECT_EQ(ErrorOf(base + "defaults: {retry_policy: {num_retries: 9}}\n"),
            "/etc/attache.yaml: defaults.retry_policy.num_retries: must be "
            "between 0 and 4, got 9");
  EXPECT_EQ(
      ErrorOf(base + "defaults: {outlier_detection: {enabled: maybe}}\n"),
      "/etc/attache.yaml: defaults.outlier_detection.enabled: must be true "
      "or false, got \"maybe\"");
  EXPECT_NE(ErrorOf(base + "defaults: {outlier_detection: {bogus: 1}}\n")
                .find("defaults.outlier_detection.bogus: unknown key"),
            std::string::npos);
  EXPECT_NE(ErrorOf(base + "defaults: {overprovisioning_factor: 50}\n")
                .find("must be between 100 and 10000"),
            std::string::npos);
}

TEST(ResilienceConfig, RegistrySourceDefaults) {
  const Config config = ParseConfig("/etc/attache.yaml", R"(
xds: {listen: "127.0.0.1:18000"}
sources:
  - name: legacy
    type: registry
    url: http://127.0.0.1:8080
    services: [billing]
    defaults: {failover: zone-failover, outlier_detection: {consecutive_5xx: 2}}
)");
  const auto& registry = std::get<RegistrySourceConfig>(config.sources[0].spec);
  EXPECT_EQ(registry.service_settings.failover, FailoverPolicy::kZoneFailover);
  EXPECT_EQ(
      registry.service_settings.resilience.outlier_detection.consecutive_5xx,
      2U);
  EXPECT_FALSE(registry.service_settings.resilience.outlier_detection
                   .max_ejection_percent);  // unset: the defaults apply
}

TEST(ResilienceConfig, HostFileServiceSettings) {
  const ServiceMap services = ParseHostFile("hosts.yaml", R"(
services:
  web:
    outlier_detection: {enabled: false}
    retry_policy: {num_retries: 1}
    endpoints: [{address: 127.0.0.1, port: 80}]
)",
                                            "legacy");
  const ResilienceSettings& r = services.at("web")->settings.resilience;
  EXPECT_EQ(r.outlier_detection.enabled, false);
  EXPECT_EQ(r.retry_policy.num_retries, 1U);
  EXPECT_FALSE(r.retry_policy.retry_on);
  try {
    ParseHostFile("hosts.yaml",
                  "services:\n  web:\n    circuit_breakers: {max_requests: "
                  "0}\n",
                  "legacy");
    FAIL() << "accepted max_requests 0";
  } catch (const ConfigError& error) {
    EXPECT_STREQ(error.what(),
                 "hosts.yaml: services.web.circuit_breakers.max_requests: "
                 "must be between 1 and 4294967295, got 0");
  }
}

KubeService Annotated(const std::string& value) {
  KubeService service;
  service.ns = "shop";
  service.name = "web";
  service.type = "ClusterIP";
  service.ports = {{"http", 80, "TCP"}};
  service.annotations[kResilienceAnnotation] = value;
  return service;
}

TEST(ResilienceConfig, KubernetesAnnotationTakesJsonOrYaml) {
  for (
      const std::string value :
      {R"({"outlier_detection": {"consecutive_5xx": 2}, "retry_policy": {"num_retries": 3}})",
       "outlier_detection: {consecutive_5xx: 2}\nretry_policy:\n  "
       "num_retries: 3\n"}) {
    ServiceMap out;
    std::vector<std::string> problems;
    AddServiceEntries(Annotated(value), {}, {}, "east", &out, &problems);
    EXPECT_TRUE(problems.empty());
    const ResilienceSettings& r = out.at("web.shop")->settings.resilience;
    EXPECT_EQ(r.outlier_detection.consecutive_5xx, 2U);
    EXPECT_EQ(r.retry_policy.num_retries, 3U);
  }
}

TEST(ResilienceConfig, BadKubernetesAnnotationIsReportedAndIgnored) {
  ServiceMap out;
  std::vector<std::string> problems;
  AddServiceEntries(Annotated("{outlier_detection: {max_ejection_percent: "
                              "300}}"),
                    {}, {}, "east", &out, &problems);
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_EQ(problems[0],
            "Service shop/web: annotation attache.io/resilience: "
            "outlier_detection.max_ejection_percent: must be between 0 and "
            "100, got 300 (ignored: the defaults apply)");
  // The service is still served, with the defaults.
  EXPECT_EQ(out.at("web.shop")->settings.resilience, ResilienceSettings{});
}

}  // namespace
}  // namespace attache
