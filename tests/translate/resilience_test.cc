#include <gtest/gtest.h>

#include "envoy/extensions/load_balancing_policies/least_request/v3/least_request.pb.h"
#include "envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.pb.h"
#include "translate/translate.h"

namespace attache {
namespace {

namespace cluster_v3 = envoy::config::cluster::v3;
using std::chrono::milliseconds;

Service WithEndpoint() {
  Service service;
  Endpoint endpoint;
  endpoint.address = "10.0.0.1";
  endpoint.port = 80;
  service.endpoints.push_back(endpoint);
  return service;
}

int64_t Millis(const google::protobuf::Duration& duration) {
  return duration.seconds() * 1000 + duration.nanos() / 1'000'000;
}

TEST(Resilience, EnvoyDefaultsEjectDeadHostsAndLetRetriesThrough) {
  const auto cluster =
      MakeCluster("web", WithEndpoint(), ServiceDefaults{}, Flavor::kEnvoy);
  ASSERT_TRUE(cluster.has_outlier_detection());
  const auto& outlier = cluster.outlier_detection();
  EXPECT_TRUE(outlier.split_external_local_origin_errors());
  EXPECT_EQ(outlier.consecutive_local_origin_failure().value(), 3U);
  EXPECT_EQ(outlier.enforcing_consecutive_local_origin_failure().value(), 100U);
  EXPECT_EQ(outlier.consecutive_5xx().value(), 5U);
  EXPECT_EQ(outlier.enforcing_consecutive_5xx().value(), 100U);
  EXPECT_EQ(outlier.consecutive_gateway_failure().value(), 3U);
  EXPECT_EQ(outlier.enforcing_consecutive_gateway_failure().value(), 100U);
  // A whole dead cluster is many hosts: all of them must be able to leave.
  EXPECT_EQ(outlier.max_ejection_percent().value(), 100U);
  EXPECT_EQ(Millis(outlier.interval()), 1000);
  EXPECT_EQ(Millis(outlier.base_ejection_time()), 10'000);
  EXPECT_EQ(Millis(outlier.max_ejection_time()), 60'000);
  EXPECT_EQ(outlier.failure_percentage_threshold().value(), 50U);
  EXPECT_EQ(outlier.enforcing_failure_percentage().value(), 100U);

  // Envoy's default max_retries (3) would shed failover retries.
  ASSERT_EQ(cluster.circuit_breakers().thresholds_size(), 1);
  const auto& limits = cluster.circuit_breakers().thresholds(0);
  EXPECT_EQ(limits.priority(), envoy::config::core::v3::DEFAULT);
  EXPECT_EQ(limits.max_retries().value(), UINT32_MAX);
  EXPECT_FALSE(limits.has_retry_budget());
  EXPECT_FALSE(limits.has_max_connections());  // Envoy's own limits stay

  // No panic mode: it would send traffic to the dead hosts again.
  ASSERT_TRUE(cluster.common_lb_config().has_healthy_panic_threshold());
  EXPECT_DOUBLE_EQ(cluster.common_lb_config().healthy_panic_threshold().value(),
                   0.0);
  EXPECT_EQ(cluster.health_checks_size(), 0);  // off unless configured
  EXPECT_FALSE(cluster.has_load_balancing_policy());
}

TEST(Resilience, GrpcGetsOnlyWhatItReads) {
  const auto cluster =
      MakeCluster("web", WithEndpoint(), ServiceDefaults{}, Flavor::kGrpc);
  const auto& outlier = cluster.outlier_detection();
  // gRFC A50: failure-percentage ejection and the ejection times.
  EXPECT_EQ(outlier.failure_percentage_threshold().value(), 50U);
  EXPECT_EQ(outlier.enforcing_failure_percentage().value(), 100U);
  EXPECT_EQ(outlier.failure_percentage_minimum_hosts().value(), 1U);
  EXPECT_EQ(outlier.failure_percentage_request_volume().value(), 10U);
  EXPECT_EQ(outlier.max_ejection_percent().value(), 100U);
  EXPECT_EQ(Millis(outlier.interval()), 1000);
  EXPECT_FALSE(outlier.has_consecutive_5xx());
  EXPECT_FALSE(outlier.split_external_local_origin_errors());
  EXPECT_FALSE(cluster.has_circuit_breakers());
  EXPECT_FALSE(cluster.has_common_lb_config());
  EXPECT_EQ(cluster.health_checks_size(), 0);
}

TEST(Resilience, GrpcLeastRequestIsATypedListWithARoundRobinFallback) {
  Service service = WithEndpoint();
  service.settings.lb_policy = LbPolicy::kLeastRequest;
  const auto grpc =
      MakeCluster("web", service, ServiceDefaults{}, Flavor::kGrpc);
  // The enum every gRPC client accepts; grpc-js refuses LEAST_REQUEST there.
  EXPECT_EQ(grpc.lb_policy(), cluster_v3::Cluster::ROUND_ROBIN);
  ASSERT_EQ(grpc.load_balancing_policy().policies_size(), 1);
  const auto& top = grpc.load_balancing_policy().policies(0);
  EXPECT_EQ(top.typed_extension_config().typed_config().type_url(),
            "type.googleapis.com/envoy.extensions.load_balancing_policies."
            "wrr_locality.v3.WrrLocality");
  envoy::extensions::load_balancing_policies::wrr_locality::v3::WrrLocality
      locality;
  ASSERT_TRUE(top.typed_extension_config().typed_config().UnpackTo(&locality));
  const auto& picking = locality.endpoint_picking_policy();
  ASSERT_EQ(picking.policies_size(), 2);
  EXPECT_EQ(
      picking.policies(0).typed_extension_config().typed_config().type_url(),
      "type.googleapis.com/envoy.extensions.load_balancing_policies."
      "least_request.v3.LeastRequest");
  EXPECT_EQ(
      picking.policies(1).typed_extension_config().typed_config().type_url(),
      "type.googleapis.com/envoy.extensions.load_balancing_policies."
      "round_robin.v3.RoundRobin");

  const auto envoy =
      MakeCluster("web", service, ServiceDefaults{}, Flavor::kEnvoy);
  EXPECT_EQ(envoy.lb_policy(), cluster_v3::Cluster::LEAST_REQUEST);
  EXPECT_FALSE(envoy.has_load_balancing_policy());
}

TEST(Resilience, GrpcRingHashList) {
  Service service = WithEndpoint();
  service.settings.lb_policy = LbPolicy::kRingHash;
  const auto grpc =
      MakeCluster("web", service, ServiceDefaults{}, Flavor::kGrpc);
  EXPECT_EQ(grpc.lb_policy(), cluster_v3::Cluster::RING_HASH);
  ASSERT_EQ(grpc.load_balancing_policy().policies_size(), 1);
  EXPECT_EQ(grpc.load_balancing_policy()
                .policies(0)
                .typed_extension_config()
                .typed_config()
                .type_url(),
            "type.googleapis.com/envoy.extensions.load_balancing_policies."
            "ring_hash.v3.RingHash");
}

TEST(Resilience, ServiceSettingsOverrideTheDefaultsFieldByField) {
  ServiceDefaults defaults;
  defaults.resilience.outlier_detection.consecutive_5xx = 7;
  Service service = WithEndpoint();
  service.settings.resilience.outlier_detection
      .consecutive_local_origin_failure = 0;  // off
  service.settings.resilience.outlier_detection.max_ejection_percent = 30;
  service.settings.resilience.healthy_panic_threshold = 25;
  service.settings.resilience.circuit_breakers.max_requests = 500;
  service.settings.resilience.circuit_breakers.retry_budget_percent = 30;
  service.settings.resilience.circuit_breakers.max_retries = 7;
  const auto cluster = MakeCluster("web", service, defaults, Flavor::kEnvoy);
  const auto& outlier = cluster.outlier_detection();
  EXPECT_EQ(outlier.consecutive_5xx().value(), 7U);  // from the defaults
  EXPECT_FALSE(outlier.has_consecutive_local_origin_failure());
  EXPECT_EQ(outlier.enforcing_consecutive_local_origin_failure().value(), 0U);
  EXPECT_EQ(outlier.max_ejection_percent().value(), 30U);
  EXPECT_DOUBLE_EQ(cluster.common_lb_config().healthy_panic_threshold().value(),
                   25.0);
  const auto& limits = cluster.circuit_breakers().thresholds(0);
  EXPECT_EQ(limits.max_requests().value(), 500U);
  EXPECT_EQ(limits.max_retries().value(), 7U);
  EXPECT_DOUBLE_EQ(limits.retry_budget().budget_percent().value(), 30.0);
  EXPECT_EQ(limits.retry_budget().min_retry_concurrency().value(), 10U);
  // gRPC reads max_requests (gRFC A32).
  const auto grpc = MakeCluster("web", service, defaults, Flavor::kGrpc);
  EXPECT_EQ(grpc.circuit_breakers().thresholds(0).max_requests().value(), 500U);
}

TEST(Resilience, OutlierDetectionCanBeTurnedOff) {
  Service service = WithEndpoint();
  service.settings.resilience.outlier_detection.enabled = false;
  for (Flavor flavor : {Flavor::kEnvoy, Flavor::kGrpc}) {
    EXPECT_FALSE(MakeCluster("web", service, ServiceDefaults{}, flavor)
                     .has_outlier_detection());
  }
}

TEST(Resilience, HealthChecksOfEachKind) {
  Service service = WithEndpoint();
  HealthCheckSettings& check = service.settings.resilience.health_check;
  check.type = HealthCheckType::kHttp;
  check.path = "/ready";
  check.interval = milliseconds(2'000);
  check.timeout = milliseconds(500);
  check.unhealthy_threshold = 3;
  check.healthy_threshold = 2;
  check.no_traffic_interval = milliseconds(30'000);
  auto cluster = MakeCluster("web", service, ServiceDefaults{}, Flavor::kEnvoy);
  ASSERT_EQ(cluster.health_checks_size(), 1);
  const auto& http = cluster.health_checks(0);
  EXPECT_EQ(http.http_health_check().path(), "/ready");
  EXPECT_EQ(Millis(http.interval()), 2000);
  EXPECT_EQ(Millis(http.timeout()), 500);
  EXPECT_EQ(http.unhealthy_threshold().value(), 3U);
  EXPECT_EQ(http.healthy_threshold().value(), 2U);
  EXPECT_EQ(Millis(http.no_traffic_interval()), 30'000);

  check.type = HealthCheckType::kGrpc;
  check.service_name = "web.v1";
  cluster = MakeCluster("web", service, ServiceDefaults{}, Flavor::kEnvoy);
  EXPECT_EQ(cluster.health_checks(0).grpc_health_check().service_name(),
            "web.v1");
  // Envoy checks gRPC health over HTTP/2 only.
  EXPECT_TRUE(cluster.typed_extension_protocol_options().contains(
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"));
  check.type = HealthCheckType::kTcp;
  cluster = MakeCluster("web", service, ServiceDefaults{}, Flavor::kEnvoy);
  EXPECT_TRUE(cluster.health_checks(0).has_tcp_health_check());
  // gRPC clients have no active health checks in xDS.
  EXPECT_EQ(MakeCluster("web", service, ServiceDefaults{}, Flavor::kGrpc)
                .health_checks_size(),
            0);
}

TEST(Resilience, GrpcRouteCarriesTheRetryPolicy) {
  RetrySettings retry = BuiltInResilience().retry_policy;
  auto config = MakeRouteConfiguration("web", "web", retry);
  const auto& policy = config.virtual_hosts(0).routes(0).route().retry_policy();
  EXPECT_EQ(policy.retry_on(),
            "connect-failure,refused-stream,unavailable,cancelled");
  EXPECT_EQ(policy.num_retries().value(), 2U);
  EXPECT_EQ(Millis(policy.retry_back_off().base_interval()), 25);
  EXPECT_EQ(Millis(policy.retry_back_off().max_interval()), 250);

  retry.num_retries = 0;
  config = MakeRouteConfiguration("web", "web", retry);
  EXPECT_FALSE(config.virtual_hosts(0).routes(0).route().has_retry_policy());
}

TEST(Resilience, TranslateServesTheRetryPolicyToGrpcClients) {
  CatalogSnapshot catalog;
  Service web = WithEndpoint();
  web.settings.resilience.retry_policy.num_retries = 4;
  catalog.services["web"] = web;
  const auto out =
      Translate(catalog, TranslateOptions{}, ViewKey{Flavor::kGrpc, {}});
  ASSERT_EQ(out.routes.size(), 1U);
  EXPECT_EQ(out.routes[0]
                .virtual_hosts(0)
                .routes(0)
                .route()
                .retry_policy()
                .num_retries()
                .value(),
            4U);
}

TEST(Resilience, OverprovisioningFactorOnlyWhenItDiffersFromEnvoys) {
  const Service service = WithEndpoint();
  EXPECT_FALSE(MakeLoadAssignment("web", service).has_policy());
  const auto assignment = MakeLoadAssignment(
      "web", service, FailoverPolicy::kZoneFailover, {}, 80, 200);
  EXPECT_EQ(assignment.policy().overprovisioning_factor().value(), 200U);
}

TEST(Resilience, OverlayFillsOnlyUnsetFields) {
  ResilienceSettings top;
  top.retry_policy.num_retries = 1;
  const ResilienceSettings out = Overlay(top, BuiltInResilience());
  EXPECT_EQ(*out.retry_policy.num_retries, 1U);
  EXPECT_EQ(*out.retry_policy.retry_on,
            *BuiltInResilience().retry_policy.retry_on);
  EXPECT_EQ(*out.outlier_detection.max_ejection_percent, 100U);
}

}  // namespace
}  // namespace attache
