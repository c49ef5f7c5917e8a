#include "sources/kubernetes/endpoints_builder.h"

#include <gtest/gtest.h>

namespace attache {
namespace {

KubeService MakeService(const std::string& name,
                        std::vector<KubeServicePort> ports) {
  KubeService service;
  service.ns = "default";
  service.name = name;
  service.type = "ClusterIP";
  service.ports = std::move(ports);
  return service;
}

KubeSliceEndpoint At(const std::string& address, std::optional<bool> ready,
                     std::optional<bool> serving = std::nullopt,
                     std::optional<bool> terminating = std::nullopt,
                     const std::string& zone = "") {
  KubeSliceEndpoint endpoint;
  endpoint.addresses = {address};
  endpoint.ready = ready;
  endpoint.serving = serving;
  endpoint.terminating = terminating;
  endpoint.zone = zone;
  endpoint.node_name = "node-1";
  return endpoint;
}

KubeEndpointSlice Slice(const std::string& service,
                        std::vector<KubeSlicePort> ports,
                        std::vector<KubeSliceEndpoint> endpoints) {
  KubeEndpointSlice slice;
  slice.ns = "default";
  slice.name = service + "-x";
  slice.service_name = service;
  slice.address_type = "IPv4";
  slice.ports = std::move(ports);
  slice.endpoints = std::move(endpoints);
  return slice;
}

ServiceMap Build(const std::vector<KubeService>& services,
                 const std::vector<KubeEndpointSlice>& slices,
                 const KubernetesSourceConfig& config = {}) {
  std::vector<const KubeService*> service_ptrs;
  for (const auto& service : services) service_ptrs.push_back(&service);
  std::vector<const KubeEndpointSlice*> slice_ptrs;
  for (const auto& slice : slices) slice_ptrs.push_back(&slice);
  return BuildServiceMap(service_ptrs, slice_ptrs, config, "east");
}

TEST(EndpointsBuilder, HealthFromConditions) {
  KubernetesSourceConfig config;
  config.locality = {"us-east-1", "us-east-1a", ""};
  const ServiceMap out =
      Build({MakeService("echo", {{"http", 80, "TCP"}})},
            {Slice("echo", {{"http", 8080, "TCP"}},
                   {At("192.0.2.1", true, true, false, "us-east-1b"),
                    At("192.0.2.2", false, true, true), At("192.0.2.3", false),
                    At("192.0.2.4", std::nullopt)})},
            config);
  ASSERT_TRUE(out.contains("echo.default"));
  const auto& endpoints = out.at("echo.default")->endpoints;
  ASSERT_EQ(endpoints.size(), 3U);  // the not-ready one is left out
  EXPECT_EQ(endpoints[0].health, Health::kHealthy);
  EXPECT_EQ(endpoints[0].port, 8080U);
  EXPECT_EQ(endpoints[0].locality,
            (Locality{"us-east-1", "us-east-1b", "east"}));
  EXPECT_EQ(endpoints[0].metadata.at("node"), "node-1");
  EXPECT_EQ(endpoints[0].metadata.at("cluster"), "east");
  EXPECT_EQ(endpoints[1].health, Health::kDraining);
  EXPECT_EQ(endpoints[1].locality.zone, "us-east-1a");  // the configured zone
  EXPECT_EQ(endpoints[2].address, "192.0.2.4");         // no conditions: ready
  EXPECT_EQ(endpoints[2].health, Health::kHealthy);

  config.not_ready_unhealthy = true;
  const ServiceMap with_unhealthy =
      Build({MakeService("echo", {{"http", 80, "TCP"}})},
            {Slice("echo", {{"http", 8080, "TCP"}}, {At("192.0.2.3", false)})},
            config);
  ASSERT_EQ(with_unhealthy.at("echo.default")->endpoints.size(), 1U);
  EXPECT_EQ(with_unhealthy.at("echo.default")->endpoints[0].health,
            Health::kUnhealthy);
}

TEST(EndpointsBuilder, MultiPortServicesGetOneServicePerPort) {
  const ServiceMap out = Build(
      {MakeService(
          "api", {{"http", 80, "TCP"}, {"", 9090, "TCP"}, {"dns", 53, "UDP"}})},
      {Slice("api", {{"http", 8080, "TCP"}, {"", 9091, "TCP"}},
             {At("192.0.2.1", true)})});
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out.at("api.default:http")->endpoints[0].port, 8080U);
  EXPECT_EQ(out.at("api.default:9090")->endpoints[0].port, 9091U);
}

TEST(EndpointsBuilder, SelectionByTypeAndAnnotation) {
  KubeService external = MakeService("ext", {{"http", 80, "TCP"}});
  external.type = "ExternalName";
  KubeService opted_out = MakeService("hidden", {{"http", 80, "TCP"}});
  opted_out.annotations["attache.io/export"] = "false";
  KubeService opted_in = MakeService("shown", {{"http", 80, "TCP"}});
  opted_in.annotations["attache.io/export"] = "true";
  const auto plain = MakeService("plain", {{"http", 80, "TCP"}});
  const ServiceMap all = Build({external, opted_out, opted_in, plain}, {});
  EXPECT_EQ(all.size(), 2U);
  EXPECT_TRUE(all.contains("shown.default"));
  EXPECT_TRUE(all.contains("plain.default"));
  EXPECT_TRUE(all.at("plain.default")->endpoints.empty());

  KubernetesSourceConfig annotated;
  annotated.export_annotated_only = true;
  const ServiceMap only =
      Build({external, opted_out, opted_in, plain}, {}, annotated);
  EXPECT_EQ(only.size(), 1U);
  EXPECT_TRUE(only.contains("shown.default"));
}

TEST(EndpointsBuilder, FailoverAnnotationSetsThePolicyOfEveryPort) {
  KubeService zoned =
      MakeService("zoned", {{"http", 80, "TCP"}, {"grpc", 9090, "TCP"}});
  zoned.annotations[kFailoverAnnotation] = "zone-failover";
  KubeService weighted = MakeService("weighted", {{"http", 80, "TCP"}});
  weighted.annotations["attache.io/failover"] = "weighted";
  KubeService flat = MakeService("flat", {{"http", 80, "TCP"}});
  flat.annotations["attache.io/failover"] = "flat";
  KubeService bogus = MakeService("bogus", {{"http", 80, "TCP"}});
  bogus.annotations["attache.io/failover"] = "nearest";
  const KubeService plain = MakeService("plain", {{"http", 80, "TCP"}});
  const ServiceMap out =
      Build({zoned, weighted, flat, bogus, plain},
            {Slice("zoned", {{"http", 8080, "TCP"}, {"grpc", 9091, "TCP"}},
                   {At("192.0.2.1", true)})});
  ASSERT_EQ(out.size(), 6U);
  EXPECT_EQ(out.at("zoned.default:http")->settings.failover,
            FailoverPolicy::kZoneFailover);
  EXPECT_EQ(out.at("zoned.default:grpc")->settings.failover,
            FailoverPolicy::kZoneFailover);
  EXPECT_EQ(out.at("zoned.default:http")->endpoints.size(), 1U);
  EXPECT_EQ(out.at("weighted.default")->settings.failover,
            FailoverPolicy::kWeighted);
  EXPECT_EQ(out.at("flat.default")->settings.failover, FailoverPolicy::kFlat);
  // Unknown values are ignored: the configured default applies.
  EXPECT_FALSE(out.at("bogus.default")->settings.failover.has_value());
  EXPECT_FALSE(out.at("plain.default")->settings.failover.has_value());
}

TEST(EndpointsBuilder, IgnoresFqdnSlicesAndOtherNamespaces) {
  KubeEndpointSlice fqdn =
      Slice("echo", {{"http", 8080, "TCP"}}, {At("192.0.2.9", true)});
  fqdn.address_type = "FQDN";
  KubeEndpointSlice elsewhere =
      Slice("echo", {{"http", 8080, "TCP"}}, {At("192.0.2.8", true)});
  elsewhere.ns = "other";
  const ServiceMap out =
      Build({MakeService("echo", {{"http", 80, "TCP"}})}, {fqdn, elsewhere});
  EXPECT_TRUE(out.at("echo.default")->endpoints.empty());
}

}  // namespace
}  // namespace attache
