// The limits on what one xDS client can make attache hold or log
// (stream_types.h): hostile requests end the stream, or are cut, before any
// state is built from them.
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>
#include <gtest/gtest.h>

#include <string>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "translate/view.h"
#include "xds/server/stream_protocol.h"

namespace attache {
namespace {

using envoy::config::core::v3::Node;
using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryRequest;

constexpr std::string_view kEdsUrl =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

grpc::ByteBuffer Bytes(const google::protobuf::Message& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

Node SmallNode() {
  Node node;
  node.set_id("envoy-1");
  return node;
}

DiscoveryRequest SotwRequest(size_t names) {
  DiscoveryRequest request;
  request.set_type_url(std::string(kEdsUrl));
  for (size_t i = 0; i < names; ++i) {
    request.add_resource_names("cluster-" + std::to_string(i));
  }
  return request;
}

TEST(StreamLimitsTest, SotwSubscriptionOverTheLimitIsRefused) {
  auto protocol = MakeSotwProtocol(std::nullopt);
  DiscoveryRequest request = SotwRequest(kMaxSubscribedNames);
  *request.mutable_node() = SmallNode();
  ASSERT_TRUE(protocol->Parse(Bytes(request)));
  EXPECT_FALSE(protocol->CheckLimits(true).has_value());

  request.add_resource_names("one-too-many");
  ASSERT_TRUE(protocol->Parse(Bytes(request)));
  auto rejection = protocol->CheckLimits(true);
  ASSERT_TRUE(rejection.has_value());
  EXPECT_EQ(rejection->reason, RejectReason::kTooManyNames);
  EXPECT_EQ(rejection->status.error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(StreamLimitsTest, DeltaSubscriptionsAddUpAcrossRequests) {
  auto protocol = MakeDeltaProtocol(std::nullopt);
  DeltaDiscoveryRequest first;
  first.set_type_url(std::string(kEdsUrl));
  *first.mutable_node() = SmallNode();
  for (size_t i = 0; i < kMaxSubscribedNames / 2 + 1; ++i) {
    first.add_resource_names_subscribe("a-" + std::to_string(i));
  }
  ASSERT_TRUE(protocol->Parse(Bytes(first)));
  ASSERT_FALSE(protocol->CheckLimits(true).has_value());
  std::string detail;
  protocol->Apply(&detail);

  // Each request alone is within the limit; together they are not.
  DeltaDiscoveryRequest second;
  second.set_type_url(std::string(kEdsUrl));
  for (size_t i = 0; i < kMaxSubscribedNames / 2 + 1; ++i) {
    second.add_resource_names_subscribe("b-" + std::to_string(i));
  }
  ASSERT_TRUE(protocol->Parse(Bytes(second)));
  auto rejection = protocol->CheckLimits(false);
  ASSERT_TRUE(rejection.has_value());
  EXPECT_EQ(rejection->reason, RejectReason::kTooManyNames);
}

TEST(StreamLimitsTest, HugeNodeIsRefusedOnlyWhenItWouldBeBound) {
  auto protocol = MakeSotwProtocol(std::nullopt);
  DiscoveryRequest request = SotwRequest(1);
  *request.mutable_node() = SmallNode();
  (*request.mutable_node()->mutable_metadata()->mutable_fields())["junk"]
      .set_string_value(std::string(kMaxNodeBytes, 'x'));
  ASSERT_TRUE(protocol->Parse(Bytes(request)));
  auto rejection = protocol->CheckLimits(true);
  ASSERT_TRUE(rejection.has_value());
  EXPECT_EQ(rejection->reason, RejectReason::kNodeTooLarge);
  EXPECT_EQ(rejection->status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // Later requests' nodes are ignored, so not refused either.
  EXPECT_FALSE(protocol->CheckLimits(false).has_value());
}

TEST(StreamLimitsTest, BoundNodeKeepsOnlyWhatAttacheReads) {
  Node node;
  node.set_id("envoy-1");
  node.set_cluster("edge");
  node.mutable_locality()->set_region("eu");
  node.mutable_locality()->set_zone("eu-1a");
  node.set_user_agent_name("envoy");
  node.set_user_agent_version("1.40.0");
  node.add_client_features("xds.config.supports-resource-ttl");
  auto& fields = *node.mutable_metadata()->mutable_fields();
  fields[std::string(kFlavorMetadataKey)].set_string_value("grpc");
  fields[std::string(kZoneMetadataKey)].set_string_value("z");
  fields["ISTIO_VERSION"].set_string_value(std::string(10'000, 'x'));
  // Envoy's list of extensions (field 9), unknown to attache's schema but
  // kept by the parser: tens of KiB per stream.
  node.GetReflection()->MutableUnknownFields(&node)->AddLengthDelimited(
      9, std::string(30'000, 'e'));

  const Node bound = BoundNodeOf(node);
  EXPECT_EQ(bound.id(), "envoy-1");
  EXPECT_EQ(bound.cluster(), "edge");
  EXPECT_EQ(bound.locality().zone(), "eu-1a");
  EXPECT_EQ(bound.user_agent_name(), "envoy");
  EXPECT_EQ(bound.user_agent_version(), "1.40.0");
  EXPECT_EQ(bound.client_features_size(), 1);
  EXPECT_EQ(bound.metadata().fields().size(), 2U);
  EXPECT_TRUE(bound.GetReflection()->GetUnknownFields(bound).empty());
  EXPECT_LT(bound.ByteSizeLong(), 300U);
  // What the view and flavor are made of is the same.
  EXPECT_EQ(ViewName(ViewKeyOf(bound)), ViewName(ViewKeyOf(node)));
}

TEST(StreamLimitsTest, NackTextIsRecordedCut) {
  CatalogSnapshot catalog;
  catalog.generation = 1;
  Endpoint endpoint;
  endpoint.address = "127.0.0.1";
  endpoint.port = 80;
  catalog.services["cluster-0"] =
      Service{.settings = {}, .endpoints = {endpoint}};
  const ViewSnapshotPtr view =
      BuildSnapshotSet(catalog, TranslateOptions{}, nullptr)
          ->For(Flavor::kEnvoy);

  auto protocol = MakeSotwProtocol(std::nullopt);
  DiscoveryRequest request = SotwRequest(1);
  *request.mutable_node() = SmallNode();
  ASSERT_TRUE(protocol->Parse(Bytes(request)));
  std::string detail;
  protocol->Apply(&detail);
  std::deque<grpc::ByteBuffer> out;
  protocol->Poll(*view, ClientTtl{}, &out);
  ASSERT_EQ(out.size(), 1U);

  // A NACK of that response (nonce "1") whose version and message are a
  // megabyte each: recorded and described cut.
  DiscoveryRequest nack = SotwRequest(1);
  nack.set_response_nonce("1");
  nack.set_version_info(std::string(1U << 20U, 'v'));
  nack.mutable_error_detail()->set_message(std::string(1U << 20U, 'm'));
  ASSERT_TRUE(protocol->Parse(Bytes(nack)));
  const RequestOutcome outcome = protocol->Apply(&detail);
  EXPECT_EQ(outcome.kind, RequestKind::kNack);
  EXPECT_LT(detail.size(), 3 * kMaxEchoedBytes);
  const nlohmann::json types = protocol->TypesJson();
  const nlohmann::json& last_nack = types[std::string(kEdsUrl)]["last_nack"];
  EXPECT_EQ(last_nack["message"].get<std::string>(),
            Clipped(std::string(1U << 20U, 'm')));
  EXPECT_EQ(last_nack["version_info"].get<std::string>(),
            Clipped(std::string(1U << 20U, 'v')));

  // A stale request with a megabyte nonce is described cut too.
  DiscoveryRequest stale = SotwRequest(1);
  stale.set_response_nonce(std::string(1U << 20U, 'n'));
  ASSERT_TRUE(protocol->Parse(Bytes(stale)));
  protocol->Apply(&detail);
  EXPECT_LT(detail.size(), 2 * kMaxEchoedBytes);
}

TEST(StreamLimitsTest, ClippedCutsBetweenUtf8Characters) {
  // "é" is two bytes: with one byte of padding, byte 1024 is the second
  // byte of a character, which a cut at 1024 would split.
  std::string text = "x";
  for (int i = 0; i < 1000; ++i) {
    text += "\xC3\xA9";
  }
  const std::string cut = Clipped(text);
  const std::string kept = cut.substr(0, cut.find("..."));
  EXPECT_EQ(kept.size(), 1023U);
  EXPECT_EQ(kept.back(), '\xA9');
  EXPECT_NE(cut.find("...(2001 bytes)"), std::string::npos);
}

TEST(StreamLimitsTest, ClippedSaysHowLongTheTextWas) {
  EXPECT_EQ(Clipped("short"), "short");
  const std::string cut = Clipped(std::string(5000, 'a'));
  EXPECT_EQ(cut, std::string(kMaxEchoedBytes, 'a') + "...(5000 bytes)");
}

}  // namespace
}  // namespace attache
