#include "translate/translate.h"

#include <gtest/gtest.h>

#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace attache {
namespace {

Endpoint At(const std::string& address, uint32_t port, Locality locality,
            uint32_t weight = 1, Health health = Health::kHealthy) {
  Endpoint endpoint;
  endpoint.address = address;
  endpoint.port = port;
  endpoint.locality = std::move(locality);
  endpoint.weight = weight;
  endpoint.health = health;
  return endpoint;
}

CatalogSnapshot Sample() {
  CatalogSnapshot catalog;
  catalog.generation = 7;
  Service echo;
  echo.endpoints = {At("10.0.0.2", 80, {"r", "z2", ""}, 2),
                    At("10.0.0.1", 80, {"r", "z1", ""}, 1, Health::kDraining),
                    At("10.0.0.3", 81, {"r", "z1", ""}, 4)};
  catalog.services["echo"] = echo;
  Service billing;
  billing.settings.lb_policy = LbPolicy::kRingHash;
  billing.settings.connect_timeout = std::chrono::milliseconds(1500);
  catalog.services["billing"] = billing;
  return catalog;
}

TEST(Translate, EnvoyGetsEdsClustersAndAssignmentsOnly) {
  const auto out =
      Translate(Sample(), TranslateOptions{}, ViewKey{Flavor::kEnvoy, {}});
  ASSERT_EQ(out.clusters.size(), 2U);
  EXPECT_TRUE(out.listeners.empty());
  EXPECT_TRUE(out.routes.empty());
  const auto& billing = out.clusters[0];
  EXPECT_EQ(billing.name(), "billing");
  EXPECT_EQ(billing.type(), envoy::config::cluster::v3::Cluster::EDS);
  EXPECT_TRUE(billing.eds_cluster_config().eds_config().has_ads());
  EXPECT_EQ(billing.eds_cluster_config().eds_config().resource_api_version(),
            envoy::config::core::v3::V3);
  EXPECT_EQ(billing.lb_policy(),
            envoy::config::cluster::v3::Cluster::RING_HASH);
  EXPECT_EQ(billing.connect_timeout().seconds(), 1);
  EXPECT_EQ(billing.connect_timeout().nanos(), 500'000'000);
  EXPECT_EQ(out.clusters[1].connect_timeout().seconds(), 1);  // the default
}

TEST(Translate, LoadAssignmentGroupsByLocalityInOrder) {
  const auto out =
      Translate(Sample(), TranslateOptions{}, ViewKey{Flavor::kEnvoy, {}});
  const auto& echo = out.endpoints[1];
  EXPECT_EQ(echo.cluster_name(), "echo");
  ASSERT_EQ(echo.endpoints_size(), 2);
  const auto& z1 = echo.endpoints(0);
  EXPECT_EQ(z1.locality().zone(), "z1");
  EXPECT_EQ(z1.priority(), 0U);
  EXPECT_EQ(z1.load_balancing_weight().value(), 5U);  // 1 + 4
  ASSERT_EQ(z1.lb_endpoints_size(), 2);
  EXPECT_EQ(z1.lb_endpoints(0).endpoint().address().socket_address().address(),
            "10.0.0.1");
  EXPECT_EQ(z1.lb_endpoints(0).health_status(),
            envoy::config::core::v3::DRAINING);
  EXPECT_EQ(z1.lb_endpoints(1).load_balancing_weight().value(), 4U);
  EXPECT_EQ(echo.endpoints(1).locality().zone(), "z2");
  // A service without endpoints is an empty assignment, not a missing one.
  EXPECT_EQ(out.endpoints[0].cluster_name(), "billing");
  EXPECT_EQ(out.endpoints[0].endpoints_size(), 0);
}

TEST(Translate, EndpointsWithoutLocalityStillCarryALocality) {
  CatalogSnapshot catalog;
  catalog.services["plain"] =
      Service{.settings = {}, .endpoints = {At("10.0.0.1", 80, {})}};
  const auto out =
      Translate(catalog, TranslateOptions{}, ViewKey{Flavor::kGrpc, {}});
  ASSERT_EQ(out.endpoints[0].endpoints_size(), 1);
  EXPECT_TRUE(out.endpoints[0].endpoints(0).has_locality());
  EXPECT_GT(out.endpoints[0].endpoints(0).load_balancing_weight().value(), 0U);
}

TEST(Translate, GrpcGetsApiListenerAndRoute) {
  TranslateOptions options;
  options.cluster_name_template = "legacy-{service}";
  const auto out = Translate(Sample(), options, ViewKey{Flavor::kGrpc, {}});
  ASSERT_EQ(out.listeners.size(), 2U);
  const auto& listener = out.listeners[1];
  EXPECT_EQ(listener.name(), "echo");
  envoy::extensions::filters::network::http_connection_manager::v3::
      HttpConnectionManager manager;
  ASSERT_TRUE(listener.api_listener().api_listener().UnpackTo(&manager));
  EXPECT_TRUE(manager.rds().config_source().has_ads());
  EXPECT_EQ(manager.rds().route_config_name(), "echo");
  ASSERT_EQ(manager.http_filters_size(), 1);
  EXPECT_TRUE(manager.http_filters(0)
                  .typed_config()
                  .Is<envoy::extensions::filters::http::router::v3::Router>());
  const auto& route = out.routes[1];
  EXPECT_EQ(route.name(), "echo");
  EXPECT_EQ(route.virtual_hosts(0).domains(0), "*");
  EXPECT_EQ(route.virtual_hosts(0).routes(0).match().prefix(), "/");
  EXPECT_EQ(route.virtual_hosts(0).routes(0).route().cluster(), "legacy-echo");
  EXPECT_EQ(out.clusters[1].name(), "legacy-echo");
}

TEST(Translate, EqualCatalogsGiveEqualOutput) {
  CatalogSnapshot reordered = Sample();
  Service echo = *reordered.services["echo"];
  std::reverse(echo.endpoints.begin(), echo.endpoints.end());
  reordered.services["echo"] = std::move(echo);
  const auto a =
      Translate(Sample(), TranslateOptions{}, ViewKey{Flavor::kGrpc, {}});
  const auto b =
      Translate(reordered, TranslateOptions{}, ViewKey{Flavor::kGrpc, {}});
  ASSERT_EQ(a.endpoints.size(), b.endpoints.size());
  for (size_t i = 0; i < a.endpoints.size(); ++i) {
    EXPECT_EQ(a.endpoints[i].SerializeAsString(),
              b.endpoints[i].SerializeAsString());
  }
}

TEST(ClusterName, ReplacesEveryPlaceholder) {
  EXPECT_EQ(ClusterName("{service}", "echo"), "echo");
  EXPECT_EQ(ClusterName("x-{service}-{service}", "a"), "x-a-a");
}

}  // namespace
}  // namespace attache
