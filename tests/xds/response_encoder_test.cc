#include "xds/server/response_encoder.h"

#include <gtest/gtest.h>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace attache {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryResponse;

constexpr std::string_view kResourceUrl =
    "type.googleapis.com/envoy.service.discovery.v3.Resource";

ViewSnapshotPtr Sample() {
  CatalogSnapshot catalog;
  catalog.generation = 1;
  Endpoint endpoint;
  endpoint.address = "127.0.0.1";
  endpoint.port = 8080;
  catalog.services["echo"] = Service{.settings = {}, .endpoints = {endpoint}};
  catalog.services["other"] = Service{};
  return BuildSnapshotSet(catalog, TranslateOptions{}, nullptr)
      ->For(Flavor::kEnvoy);
}

std::string Bytes(grpc::ByteBuffer buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const auto& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

DeltaDiscoveryResponse DecodeDelta(const PendingDeltaResponse& response,
                                   const ClientTtl& ttl = {}) {
  DeltaDiscoveryResponse decoded;
  EXPECT_TRUE(
      decoded.ParseFromString(Bytes(EncodeDeltaResponse(response, ttl))));
  return decoded;
}

DiscoveryResponse DecodeSotw(const PendingResponse& response,
                             const ClientTtl& ttl = {}) {
  DiscoveryResponse decoded;
  EXPECT_TRUE(decoded.ParseFromString(Bytes(EncodeResponse(response, ttl))));
  return decoded;
}

TEST(DeltaResponseEncoder, DecodesAsDeltaDiscoveryResponse) {
  const auto view = Sample();
  const auto& clusters = view->Of(ResourceType::kCluster);
  PendingDeltaResponse response{ResourceType::kCluster,
                                "sys-v1",
                                "42",
                                {clusters.at("echo"), clusters.at("other")},
                                {"gone-a", "gone-b"},
                                false};
  const DeltaDiscoveryResponse decoded = DecodeDelta(response);
  EXPECT_EQ(decoded.system_version_info(), "sys-v1");
  EXPECT_EQ(decoded.type_url(), TypeUrl(ResourceType::kCluster));
  EXPECT_EQ(decoded.nonce(), "42");
  EXPECT_EQ(decoded.control_plane().identifier(), "attache/" ATTACHE_VERSION);
  ASSERT_EQ(decoded.removed_resources_size(), 2);
  EXPECT_EQ(decoded.removed_resources(0), "gone-a");
  EXPECT_EQ(decoded.removed_resources(1), "gone-b");
  ASSERT_EQ(decoded.resources_size(), 2);
  const char* names[] = {"echo", "other"};
  for (int i = 0; i < 2; ++i) {
    const auto& resource = decoded.resources(i);
    EXPECT_EQ(resource.name(), names[i]);
    EXPECT_EQ(resource.version(), clusters.at(names[i])->version);
    EXPECT_FALSE(resource.has_ttl());
    ASSERT_TRUE(resource.has_resource());
    EXPECT_EQ(resource.resource().type_url(), TypeUrl(ResourceType::kCluster));
    envoy::config::cluster::v3::Cluster cluster;
    ASSERT_TRUE(resource.resource().UnpackTo(&cluster));
    EXPECT_EQ(cluster.name(), names[i]);
    EXPECT_EQ(cluster.type(), envoy::config::cluster::v3::Cluster::EDS);
  }
}

TEST(DeltaResponseEncoder, LoadAssignmentsUnpackAsTheirType) {
  const auto view = Sample();
  const auto& endpoints = view->Of(ResourceType::kEndpoint);
  PendingDeltaResponse response{ResourceType::kEndpoint, "v", "1",
                                {endpoints.at("echo")},  {},  false};
  const auto decoded = DecodeDelta(response);
  EXPECT_EQ(decoded.type_url(), TypeUrl(ResourceType::kEndpoint));
  EXPECT_EQ(decoded.removed_resources_size(), 0);
  ASSERT_EQ(decoded.resources_size(), 1);
  envoy::config::endpoint::v3::ClusterLoadAssignment assignment;
  ASSERT_TRUE(decoded.resources(0).resource().UnpackTo(&assignment));
  EXPECT_EQ(assignment.cluster_name(), "echo");
  ASSERT_EQ(assignment.endpoints_size(), 1);
  EXPECT_EQ(assignment.endpoints(0)
                .lb_endpoints(0)
                .endpoint()
                .address()
                .socket_address()
                .port_value(),
            8080U);
}

TEST(DeltaResponseEncoder, RemovalsOnly) {
  PendingDeltaResponse response{
      ResourceType::kListener, "v", "3", {}, {"gone"}, false};
  const auto decoded = DecodeDelta(response);
  EXPECT_EQ(decoded.resources_size(), 0);
  ASSERT_EQ(decoded.removed_resources_size(), 1);
  EXPECT_EQ(decoded.removed_resources(0), "gone");
  EXPECT_EQ(decoded.nonce(), "3");
}

TEST(DeltaResponseEncoder, EveryResourceCarriesTheTtlWhenSet) {
  const auto view = Sample();
  const auto& clusters = view->Of(ResourceType::kCluster);
  PendingDeltaResponse response{ResourceType::kCluster,
                                "v",
                                "5",
                                {clusters.at("echo"), clusters.at("other")},
                                {},
                                false};
  const auto decoded = DecodeDelta(response, ClientTtl{90'250, false});
  ASSERT_EQ(decoded.resources_size(), 2);
  for (const auto& resource : decoded.resources()) {
    ASSERT_TRUE(resource.has_ttl()) << resource.name();
    EXPECT_EQ(resource.ttl().seconds(), 90);
    EXPECT_EQ(resource.ttl().nanos(), 250'000'000);
    EXPECT_TRUE(resource.has_resource());
  }
  // Whole seconds and sub-second TTLs.
  const auto whole = DecodeDelta(response, ClientTtl{30'000, false});
  EXPECT_EQ(whole.resources(0).ttl().seconds(), 30);
  EXPECT_EQ(whole.resources(0).ttl().nanos(), 0);
  const auto small = DecodeDelta(response, ClientTtl{500, false});
  EXPECT_EQ(small.resources(0).ttl().seconds(), 0);
  EXPECT_EQ(small.resources(0).ttl().nanos(), 500'000'000);
}

TEST(DeltaResponseEncoder, HeartbeatsHaveNameVersionAndTtlButNoBody) {
  const auto view = Sample();
  const auto& clusters = view->Of(ResourceType::kCluster);
  PendingDeltaResponse response{ResourceType::kCluster,
                                "v",
                                "8",
                                {clusters.at("echo"), clusters.at("other")},
                                {},
                                true};
  const auto decoded = DecodeDelta(response, ClientTtl{30'000, false});
  ASSERT_EQ(decoded.resources_size(), 2);
  EXPECT_EQ(decoded.resources(0).name(), "echo");
  EXPECT_EQ(decoded.resources(0).version(), clusters.at("echo")->version);
  for (const auto& resource : decoded.resources()) {
    EXPECT_FALSE(resource.has_resource()) << resource.name();
    EXPECT_EQ(resource.ttl().seconds(), 30);
  }
  EXPECT_EQ(decoded.removed_resources_size(), 0);
}

TEST(SotwResponseEncoder, WholeMapIsOneSliceSharedByEveryResponse) {
  const auto view = Sample();
  const ResourceMapPtr& clusters =
      view->resources[Index(ResourceType::kCluster)];
  std::vector<ResourcePtr> all;
  for (const auto& [name, resource] : *clusters) {
    all.push_back(resource);
  }
  const PendingResponse per_resource{ResourceType::kCluster, "v1", "7", all,
                                     nullptr};
  const PendingResponse whole{ResourceType::kCluster, "v1", "7", all, clusters};
  EXPECT_EQ(Bytes(EncodeResponse(whole)), Bytes(EncodeResponse(per_resource)));

  std::vector<grpc::Slice> first;
  std::vector<grpc::Slice> second;
  ASSERT_TRUE(EncodeResponse(whole).Dump(&first).ok());
  ASSERT_TRUE(EncodeResponse(whole).Dump(&second).ok());
  ASSERT_EQ(first.size(), 2U);  // the envelope, then every resource
  ASSERT_EQ(second.size(), 2U);
  EXPECT_EQ(first[1].begin(), second[1].begin());  // one body, shared
  // With TTLs each resource is wrapped on its own: no shared body.
  const auto wrapped = DecodeSotw(whole, ClientTtl{2'500, true});
  ASSERT_EQ(wrapped.resources_size(), 2);
  EXPECT_EQ(wrapped.resources(0).type_url(), kResourceUrl);

  const PendingDeltaResponse delta_each{
      ResourceType::kCluster, "s1", "8", all, {}, false, nullptr};
  const PendingDeltaResponse delta_whole{
      ResourceType::kCluster, "s1", "8", all, {}, false, clusters};
  EXPECT_EQ(Bytes(EncodeDeltaResponse(delta_whole)),
            Bytes(EncodeDeltaResponse(delta_each)));
  EXPECT_EQ(DecodeDelta(delta_whole).resources_size(), 2);
}

TEST(SotwResponseEncoder, ResourceInSotwWrapsEachResourceWithItsTtl) {
  const auto view = Sample();
  const auto& clusters = view->Of(ResourceType::kCluster);
  PendingResponse response{ResourceType::kCluster,
                           "v1",
                           "7",
                           {clusters.at("echo"), clusters.at("other")},
                           nullptr};
  const auto decoded = DecodeSotw(response, ClientTtl{2'500, true});
  EXPECT_EQ(decoded.version_info(), "v1");
  EXPECT_EQ(decoded.nonce(), "7");
  EXPECT_EQ(decoded.type_url(), TypeUrl(ResourceType::kCluster));
  ASSERT_EQ(decoded.resources_size(), 2);
  const char* names[] = {"echo", "other"};
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(decoded.resources(i).type_url(), kResourceUrl);
    envoy::service::discovery::v3::Resource wrapped;
    ASSERT_TRUE(decoded.resources(i).UnpackTo(&wrapped));
    EXPECT_EQ(wrapped.name(), names[i]);
    EXPECT_EQ(wrapped.version(), clusters.at(names[i])->version);
    EXPECT_EQ(wrapped.ttl().seconds(), 2);
    EXPECT_EQ(wrapped.ttl().nanos(), 500'000'000);
    EXPECT_EQ(wrapped.resource().type_url(), TypeUrl(ResourceType::kCluster));
    envoy::config::cluster::v3::Cluster cluster;
    ASSERT_TRUE(wrapped.resource().UnpackTo(&cluster));
    EXPECT_EQ(cluster.name(), names[i]);
  }
}

TEST(SotwResponseEncoder, WithoutResourceInSotwResourcesAreNotWrapped) {
  const auto view = Sample();
  const auto& clusters = view->Of(ResourceType::kCluster);
  PendingResponse response{
      ResourceType::kCluster, "v1", "7", {clusters.at("echo")}, nullptr};
  for (const ClientTtl& ttl :
       {ClientTtl{}, ClientTtl{2'500, false}, ClientTtl{0, true}}) {
    const auto decoded = DecodeSotw(response, ttl);
    ASSERT_EQ(decoded.resources_size(), 1);
    EXPECT_EQ(decoded.resources(0).type_url(), TypeUrl(ResourceType::kCluster))
        << ttl.ttl_ms << " " << ttl.resource_in_sotw;
    envoy::config::cluster::v3::Cluster cluster;
    ASSERT_TRUE(decoded.resources(0).UnpackTo(&cluster));
    EXPECT_EQ(cluster.name(), "echo");
  }
  // Unwrapped, the bytes are exactly the shared resource bytes.
  const std::string plain = Bytes(EncodeResponse(response));
  EXPECT_EQ(Bytes(EncodeResponse(response, ClientTtl{2'500, false})), plain);
}

}  // namespace
}  // namespace attache
