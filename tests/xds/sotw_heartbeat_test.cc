#include <gtest/gtest.h>

#include "xds/server/sotw_state.h"

namespace attache {
namespace {

using envoy::service::discovery::v3::DiscoveryRequest;

constexpr ResourceType kCds = ResourceType::kCluster;
constexpr ResourceType kEds = ResourceType::kEndpoint;

ViewSnapshotPtr View(LbPolicy policy, uint64_t generation = 1) {
  CatalogSnapshot catalog;
  catalog.generation = generation;
  for (const char* name : {"a", "b"}) {
    Endpoint endpoint;
    endpoint.address = "127.0.0.1";
    endpoint.port = 80;
    Service service;
    service.endpoints = {endpoint};
    service.settings.lb_policy = policy;
    catalog.services[name] = service;
  }
  return BuildSnapshotSet(catalog, TranslateOptions{}, nullptr)
      ->For(Flavor::kEnvoy);
}

DiscoveryRequest Request(ResourceType type, std::vector<std::string> names,
                         const std::string& nonce = "") {
  DiscoveryRequest request;
  request.set_type_url(std::string(TypeUrl(type)));
  for (auto& name : names) request.add_resource_names(name);
  request.set_response_nonce(nonce);
  return request;
}

DiscoveryRequest Ack(const PendingResponse& response,
                     std::vector<std::string> names = {}) {
  DiscoveryRequest request =
      Request(response.type, std::move(names), response.nonce);
  request.set_version_info(response.version_info);
  return request;
}

DiscoveryRequest Nack(const PendingResponse& response) {
  DiscoveryRequest request = Request(response.type, {}, response.nonce);
  request.mutable_error_detail()->set_code(3);
  request.mutable_error_detail()->set_message("bad cluster");
  return request;
}

TEST(SotwHeartbeat, ResendsWhatTheClientHoldsWithBodiesAndTheSameVersion) {
  SotwState state;
  state.KeepAccepted();
  EXPECT_TRUE(state.Heartbeats(*View(LbPolicy::kRoundRobin)).empty());
  state.OnRequest(Request(kCds, {}));
  state.OnRequest(Request(kEds, {"a", "b"}));
  const auto view = View(LbPolicy::kRoundRobin);
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_TRUE(state.Heartbeats(*view).empty());  // both in flight
  state.OnRequest(Ack(out[0]));
  state.OnRequest(Ack(out[1], {"a", "b"}));
  auto beats = state.Heartbeats(*view);
  ASSERT_EQ(beats.size(), 2U);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(beats[i].type, out[i].type);
    EXPECT_EQ(beats[i].version_info, out[i].version_info);
    EXPECT_NE(beats[i].nonce, out[i].nonce);
    ASSERT_EQ(beats[i].resources.size(), out[i].resources.size());
    for (size_t r = 0; r < out[i].resources.size(); ++r) {
      EXPECT_EQ(beats[i].resources[r].get(), out[i].resources[r].get());
    }
  }
  EXPECT_TRUE(state.Heartbeats(*view).empty());  // heartbeats in flight
  state.OnRequest(Ack(beats[0]));
  state.OnRequest(Ack(beats[1], {"a", "b"}));
  EXPECT_TRUE(state.Poll(*view).empty());  // a heartbeat changes nothing
}

// A heartbeat must not send the content the client just rejected again: it
// would be rejected again at every heartbeat (checklist 8).
TEST(SotwHeartbeat, NeverResendsRejectedContent) {
  SotwState state;
  state.KeepAccepted();
  state.OnRequest(Request(kCds, {}));
  auto out = state.Poll(*View(LbPolicy::kRoundRobin));
  ASSERT_EQ(out.size(), 1U);
  state.OnRequest(Ack(out[0]));
  const auto changed = View(LbPolicy::kRingHash, 2);
  auto rejected = state.Poll(*changed);
  ASSERT_EQ(rejected.size(), 1U);
  ASSERT_EQ(rejected[0].type, kCds);
  state.OnRequest(Nack(rejected[0]));
  for (const auto& beat : state.Heartbeats(*changed)) {
    EXPECT_NE(beat.version_info, rejected[0].version_info)
        << ShortName(beat.type);
    for (const auto& resource : beat.resources) {
      EXPECT_NE(resource->version,
                changed->Of(beat.type).at(resource->name)->version)
          << ShortName(beat.type) << " " << resource->name;
    }
  }
}

// With TTLs, what is not refreshed expires at the client, and Envoy drops an
// expired cluster or listener. After a NACK the client keeps the content it
// accepted before: heartbeats must keep refreshing that (with its
// version_info), or one rejected update becomes an outage after one TTL.
TEST(SotwHeartbeat, KeepsRefreshingTheAcceptedContentAfterANack) {
  SotwState state;
  state.KeepAccepted();
  state.OnRequest(Request(kCds, {}));
  auto accepted = state.Poll(*View(LbPolicy::kRoundRobin));
  ASSERT_EQ(accepted.size(), 1U);
  state.OnRequest(Ack(accepted[0]));
  const auto changed = View(LbPolicy::kRingHash, 2);
  auto rejected = state.Poll(*changed);
  ASSERT_EQ(rejected.size(), 1U);
  state.OnRequest(Nack(rejected[0]));
  auto beats = state.Heartbeats(*changed);
  ASSERT_EQ(beats.size(), 1U);
  EXPECT_EQ(beats[0].type, kCds);
  EXPECT_EQ(beats[0].version_info, accepted[0].version_info);
  ASSERT_EQ(beats[0].resources.size(), accepted[0].resources.size());
  for (size_t i = 0; i < accepted[0].resources.size(); ++i) {
    EXPECT_EQ(beats[0].resources[i].get(), accepted[0].resources[i].get());
  }
}

ViewSnapshotPtr Ports(uint32_t a, uint32_t b, uint64_t generation) {
  CatalogSnapshot catalog;
  catalog.generation = generation;
  for (const auto& [name, port] : {std::pair{"a", a}, std::pair{"b", b}}) {
    Endpoint endpoint;
    endpoint.address = "127.0.0.1";
    endpoint.port = port;
    catalog.services[name] = Service{.settings = {}, .endpoints = {endpoint}};
  }
  return BuildSnapshotSet(catalog, TranslateOptions{}, nullptr)
      ->For(Flavor::kEnvoy);
}

std::vector<std::string> Names(const PendingResponse& response) {
  std::vector<std::string> names;
  for (const auto& resource : response.resources) {
    names.push_back(resource->name);
  }
  return names;
}

// Found by fuzz/xds_stream_fuzzer: assignments the client no longer asks for
// kept being refreshed by heartbeats.
TEST(SotwHeartbeat, LeavesOutWhatTheClientUnsubscribed) {
  SotwState state;
  state.KeepAccepted();
  state.OnRequest(Request(kEds, {"a", "b"}));
  const auto view = Ports(80, 80, 1);
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  state.OnRequest(Ack(out[0], {"a", "b"}));
  state.OnRequest(Ack(out[0], {"a"}));  // drops b
  auto beats = state.Heartbeats(*view);
  ASSERT_EQ(beats.size(), 1U);
  EXPECT_EQ(Names(beats[0]), (std::vector<std::string>{"a"}));
}

// Found by fuzz/xds_stream_fuzzer: after a NACK, the next ACK made heartbeats
// claim the rejected assignment too, sending the rejected bytes again.
TEST(SotwHeartbeat, LeavesOutAnAssignmentTheClientRejected) {
  SotwState state;
  state.KeepAccepted();
  state.OnRequest(Request(kEds, {"a", "b"}));
  auto first = state.Poll(*Ports(80, 80, 1));
  ASSERT_EQ(first.size(), 1U);
  state.OnRequest(Ack(first[0], {"a", "b"}));
  auto rejected = state.Poll(*Ports(81, 80, 2));
  ASSERT_EQ(Names(rejected[0]), (std::vector<std::string>{"a"}));
  DiscoveryRequest nack = Nack(rejected[0]);
  nack.add_resource_names("a");
  nack.add_resource_names("b");
  state.OnRequest(nack);
  const auto latest = Ports(81, 82, 3);  // a as rejected, b changed
  auto accepted = state.Poll(*latest);
  ASSERT_EQ(Names(accepted[0]), (std::vector<std::string>{"b"}));
  state.OnRequest(Ack(accepted[0], {"a", "b"}));
  auto beats = state.Heartbeats(*latest);
  ASSERT_EQ(beats.size(), 1U);
  EXPECT_EQ(Names(beats[0]), (std::vector<std::string>{"b"}));
}

}  // namespace
}  // namespace attache
