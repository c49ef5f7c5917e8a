#include "xds/cache/snapshot.h"

#include <gtest/gtest.h>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/server/response_encoder.h"

namespace attache {
namespace {

CatalogSnapshot CatalogWith(uint32_t port, uint64_t generation) {
  CatalogSnapshot catalog;
  catalog.generation = generation;
  Endpoint endpoint;
  endpoint.address = "127.0.0.1";
  endpoint.port = port;
  catalog.services["echo"] = Service{.settings = {}, .endpoints = {endpoint}};
  catalog.services["other"] = Service{};
  return catalog;
}

TEST(Snapshot, VersionsAreContentHashesStableAcrossBuilds) {
  const auto a =
      BuildSnapshotSet(CatalogWith(80, 1), TranslateOptions{}, nullptr);
  const auto b =
      BuildSnapshotSet(CatalogWith(80, 9), TranslateOptions{}, nullptr);
  for (ResourceType type : kAllResourceTypes) {
    const auto& left = a->For(Flavor::kGrpc)->Of(type);
    const auto& right = b->For(Flavor::kGrpc)->Of(type);
    ASSERT_EQ(left.size(), right.size());
    for (const auto& [name, resource] : left) {
      EXPECT_EQ(resource->version, right.at(name)->version) << name;
      EXPECT_EQ(resource->version.size(), 16U);
    }
  }
  EXPECT_EQ(
      a->For(Flavor::kEnvoy)->Of(ResourceType::kCluster).at("echo")->version,
      b->For(Flavor::kEnvoy)->Of(ResourceType::kCluster).at("echo")->version);
  // Each flavor gets what it reads (docs/resilience.md): different bytes.
  EXPECT_NE(
      a->For(Flavor::kEnvoy)->Of(ResourceType::kCluster).at("echo")->version,
      a->For(Flavor::kGrpc)->Of(ResourceType::kCluster).at("echo")->version);
}

TEST(Snapshot, OnlyChangedResourcesGetNewVersionsAndUnchangedAreShared) {
  const auto before =
      BuildSnapshotSet(CatalogWith(80, 1), TranslateOptions{}, nullptr);
  const auto after =
      BuildSnapshotSet(CatalogWith(81, 2), TranslateOptions{}, before);
  const auto& old_eds =
      before->For(Flavor::kEnvoy)->Of(ResourceType::kEndpoint);
  const auto& new_eds = after->For(Flavor::kEnvoy)->Of(ResourceType::kEndpoint);
  EXPECT_NE(old_eds.at("echo")->version, new_eds.at("echo")->version);
  // Unchanged resources are the very same objects: no new bytes.
  EXPECT_EQ(old_eds.at("other").get(), new_eds.at("other").get());
  EXPECT_EQ(
      before->For(Flavor::kEnvoy)->Of(ResourceType::kCluster).at("echo").get(),
      after->For(Flavor::kEnvoy)->Of(ResourceType::kCluster).at("echo").get());
}

TEST(Snapshot, RoutesKnowTheClustersTheyNameListenersOnRdsNone) {
  TranslateOptions options;
  options.cluster_name_template = "{service}-cluster";
  const auto set = BuildSnapshotSet(CatalogWith(80, 1), options, nullptr);
  const ViewSnapshot& view = *set->For(Flavor::kGrpc);
  EXPECT_EQ(view.Of(ResourceType::kRoute).at("echo")->clusters,
            std::vector<std::string>{"echo-cluster"});
  EXPECT_TRUE(view.Of(ResourceType::kListener).at("echo")->clusters.empty());
  EXPECT_TRUE(
      view.Of(ResourceType::kCluster).at("echo-cluster")->clusters.empty());
}

TEST(ResponseEncoder, DecodesWithTheProtobufSchema) {
  const auto set =
      BuildSnapshotSet(CatalogWith(80, 1), TranslateOptions{}, nullptr);
  const auto& clusters = set->For(Flavor::kEnvoy)->Of(ResourceType::kCluster);
  PendingResponse response{ResourceType::kCluster,
                           "v1",
                           "7",
                           {clusters.at("echo"), clusters.at("other")},
                           nullptr};
  grpc::ByteBuffer buffer = EncodeResponse(response);
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const auto& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  envoy::service::discovery::v3::DiscoveryResponse decoded;
  ASSERT_TRUE(decoded.ParseFromString(bytes));
  EXPECT_EQ(decoded.version_info(), "v1");
  EXPECT_EQ(decoded.nonce(), "7");
  EXPECT_EQ(decoded.type_url(), TypeUrl(ResourceType::kCluster));
  EXPECT_EQ(decoded.control_plane().identifier(), "attache/" ATTACHE_VERSION);
  ASSERT_EQ(decoded.resources_size(), 2);
  envoy::config::cluster::v3::Cluster cluster;
  EXPECT_EQ(decoded.resources(0).type_url(), TypeUrl(ResourceType::kCluster));
  ASSERT_TRUE(decoded.resources(0).UnpackTo(&cluster));
  EXPECT_EQ(cluster.name(), "echo");
}

}  // namespace
}  // namespace attache
