#include "xds/server/stream_registry.h"

#include <gtest/gtest.h>

namespace attache {
namespace {

constexpr const char* kSupportsTtl = "xds.config.supports-resource-ttl";
constexpr const char* kResourceInSotw = "xds.config.resource-in-sotw";

envoy::config::core::v3::Node NodeWith(std::vector<std::string> features) {
  envoy::config::core::v3::Node node;
  node.set_id("n");
  for (auto& feature : features) node.add_client_features(feature);
  return node;
}

TtlConfig ThirtySeconds() {
  TtlConfig ttl;
  ttl.ttl = std::chrono::seconds(30);
  ttl.heartbeat = std::chrono::seconds(10);
  return ttl;
}

TEST(StreamRegistryTtl, OnlyForClientsThatAnnounceSupport) {
  const StreamRegistry registry(nullptr, ThirtySeconds());
  const ClientTtl none = registry.TtlFor(NodeWith({}), Flavor::kEnvoy);
  EXPECT_EQ(none.ttl_ms, 0U);
  EXPECT_FALSE(none.resource_in_sotw);

  const ClientTtl delta = registry.TtlFor(
      NodeWith({"envoy.lb.other", kSupportsTtl}), Flavor::kEnvoy);
  EXPECT_EQ(delta.ttl_ms, 30'000U);
  EXPECT_FALSE(delta.resource_in_sotw);

  const ClientTtl sotw = registry.TtlFor(
      NodeWith({kResourceInSotw, kSupportsTtl}), Flavor::kEnvoy);
  EXPECT_EQ(sotw.ttl_ms, 30'000U);
  EXPECT_TRUE(sotw.resource_in_sotw);

  // resource-in-sotw alone gives no TTL, so nothing gets wrapped.
  EXPECT_EQ(registry.TtlFor(NodeWith({kResourceInSotw}), Flavor::kEnvoy).ttl_ms,
            0U);
}

TEST(StreamRegistryTtl, NeverForGrpcClients) {
  const StreamRegistry registry(nullptr, ThirtySeconds());
  const ClientTtl grpc =
      registry.TtlFor(NodeWith({kSupportsTtl, kResourceInSotw}), Flavor::kGrpc);
  EXPECT_EQ(grpc.ttl_ms, 0U);
  EXPECT_FALSE(grpc.resource_in_sotw);
}

TEST(StreamRegistryTtl, NeverWhenNoTtlIsConfigured) {
  const StreamRegistry registry(nullptr, TtlConfig{});
  const ClientTtl ttl = registry.TtlFor(
      NodeWith({kSupportsTtl, kResourceInSotw}), Flavor::kEnvoy);
  EXPECT_EQ(ttl.ttl_ms, 0U);
  EXPECT_EQ(registry.ttl().ttl.count(), 0);
}

}  // namespace
}  // namespace attache
