// A publication costs what changed: unchanged services are not translated
// again, unchanged maps keep their identity, and a stream that holds
// everything looks only at the names that changed. These tests check that
// the shortcuts never hide a change.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "xds/server/delta_state.h"
#include "xds/server/sotw_state.h"

namespace attache {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryRequest;
constexpr ResourceType kCds = ResourceType::kCluster;
constexpr ResourceType kEds = ResourceType::kEndpoint;

// One generation after another, each built on the previous one as the
// pipeline does. Services map to the port of their single endpoint.
class Generations {
 public:
  // Services in `ring_hash` get that policy: their cluster changes, their
  // load assignment does not.
  ViewSnapshotPtr Next(const std::map<std::string, uint32_t>& services,
                       const std::set<std::string>& ring_hash = {}) {
    CatalogSnapshot catalog;
    catalog.generation = ++generation_;
    for (const auto& [name, port] : services) {
      Endpoint endpoint;
      endpoint.address = "10.0.0.1";
      endpoint.port = port;
      Service service;
      service.endpoints = {endpoint};
      if (ring_hash.contains(name)) {
        service.settings.lb_policy = LbPolicy::kRingHash;
      }
      catalog.services[name] = std::move(service);
    }
    set_ = BuildSnapshotSet(catalog, TranslateOptions{}, set_);
    return set_->For(Flavor::kEnvoy);
  }

 private:
  uint64_t generation_ = 0;
  SnapshotSetPtr set_;
};

DiscoveryRequest SotwRequest(ResourceType type, std::vector<std::string> names,
                             const PendingResponse* answering = nullptr) {
  DiscoveryRequest request;
  request.set_type_url(std::string(TypeUrl(type)));
  for (auto& name : names) request.add_resource_names(name);
  if (answering != nullptr) {
    request.set_version_info(answering->version_info);
    request.set_response_nonce(answering->nonce);
  }
  return request;
}

std::vector<std::string> Names(const std::vector<ResourcePtr>& resources) {
  std::vector<std::string> names;
  for (const auto& resource : resources) names.push_back(resource->name);
  return names;
}
using Strings = std::vector<std::string>;

TEST(Incremental, UnchangedServicesKeepTheirResourcesAndMaps) {
  Generations generations;
  const auto first = generations.Next({{"a", 80}, {"b", 80}});
  const auto second = generations.Next({{"a", 80}, {"b", 81}});
  // Clusters did not change: the same map, so CDS streams skip it at once.
  EXPECT_EQ(first->resources[Index(kCds)], second->resources[Index(kCds)]);
  // Endpoints did: a new map that names what changed since the first.
  ASSERT_NE(first->resources[Index(kEds)], second->resources[Index(kEds)]);
  const MapChangePtr& change = second->changes[Index(kEds)];
  ASSERT_NE(change, nullptr);
  EXPECT_EQ(change->base.lock(), first->resources[Index(kEds)]);
  EXPECT_EQ(change->names, (Strings{"b"}));
  // The unchanged service's assignment is the very same resource.
  EXPECT_EQ(first->Of(kEds).at("a"), second->Of(kEds).at("a"));
  EXPECT_NE(first->Of(kEds).at("b")->version,
            second->Of(kEds).at("b")->version);

  const auto third = generations.Next({{"a", 80}, {"b", 81}, {"c", 80}});
  EXPECT_EQ(third->changes[Index(kEds)]->names, (Strings{"c"}));
  EXPECT_EQ(third->changes[Index(kCds)]->names, (Strings{"c"}));
  const auto fourth = generations.Next({{"a", 80}, {"c", 80}});
  EXPECT_EQ(fourth->changes[Index(kEds)]->names, (Strings{"b"}));  // removed
}

TEST(Incremental, SotwStreamSkipsOthersChangesButNeverItsOwn) {
  Generations generations;
  SotwState state;
  state.OnRequest(SotwRequest(kEds, {"a"}));
  auto view = generations.Next({{"a", 80}, {"b", 80}});
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  state.OnRequest(SotwRequest(kEds, {"a"}, &out[0]));
  EXPECT_TRUE(state.Poll(*view).empty());

  view = generations.Next({{"a", 80}, {"b", 81}});  // not its cluster
  EXPECT_TRUE(state.Poll(*view).empty());
  view = generations.Next({{"a", 80}, {"b", 82}});  // again not
  EXPECT_TRUE(state.Poll(*view).empty());
  view = generations.Next({{"a", 81}, {"b", 82}});  // its own
  out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(Names(out[0].resources), (Strings{"a"}));
  EXPECT_EQ(out[0].resources[0], view->Of(kEds).at("a"));
}

TEST(Incremental, ChangesWhileAResponseIsInFlightGoOutAfterTheAck) {
  Generations generations;
  SotwState state;
  state.OnRequest(SotwRequest(kEds, {"a", "b"}));
  auto view = generations.Next({{"a", 80}, {"b", 80}});
  auto first = state.Poll(*view);
  ASSERT_EQ(first.size(), 1U);
  // Two generations pass before the client answers.
  view = generations.Next({{"a", 81}, {"b", 80}});
  EXPECT_TRUE(state.Poll(*view).empty());
  view = generations.Next({{"a", 81}, {"b", 81}});
  EXPECT_TRUE(state.Poll(*view).empty());
  state.OnRequest(SotwRequest(kEds, {"a", "b"}, &first[0]));
  auto second = state.Poll(*view);
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(Names(second[0].resources), (Strings{"a", "b"}));
  state.OnRequest(SotwRequest(kEds, {"a", "b"}, &second[0]));
  EXPECT_TRUE(state.Poll(*view).empty());
}

TEST(Incremental, ANameAddedWhileInFlightIsSentAfterTheAck) {
  Generations generations;
  SotwState state;
  state.OnRequest(SotwRequest(kEds, {"a"}));
  const auto view = generations.Next({{"a", 80}, {"b", 80}});
  auto first = state.Poll(*view);
  ASSERT_EQ(first.size(), 1U);
  // A request with a stale nonce changes the subscription; then the ACK.
  PendingResponse stale = first[0];
  stale.nonce = "stale";
  state.OnRequest(SotwRequest(kEds, {"a", "b"}, &stale));
  state.OnRequest(SotwRequest(kEds, {"a", "b"}, &first[0]));
  auto second = state.Poll(*view);
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(Names(second[0].resources), (Strings{"b"}));
}

TEST(Incremental, ACdsChangeResendsTheAssignmentEvenIfEdsWasQuiet) {
  Generations generations;
  SotwState state;
  state.OnRequest(SotwRequest(kCds, {}));
  auto view = generations.Next({{"a", 80}});
  auto cds = state.Poll(*view);
  ASSERT_EQ(cds.size(), 1U);
  state.OnRequest(SotwRequest(kCds, {}, &cds[0]));
  state.OnRequest(SotwRequest(kEds, {"a"}));
  auto eds = state.Poll(*view);
  ASSERT_EQ(eds.size(), 1U);
  state.OnRequest(SotwRequest(kEds, {"a"}, &eds[0]));
  EXPECT_TRUE(state.Poll(*view).empty());
  // Envoy warms a changed cluster and waits for its assignment, so the
  // unchanged assignment of a changed cluster goes again.
  view = generations.Next({{"a", 80}}, {"a"});
  ASSERT_EQ(view->changes[Index(kEds)], nullptr);  // the same EDS map
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].type, kCds);
  EXPECT_EQ(out[1].type, kEds);
  EXPECT_EQ(Names(out[1].resources), (Strings{"a"}));
}

DeltaDiscoveryRequest DeltaRequest(ResourceType type, Strings subscribe,
                                   std::string nonce = "") {
  DeltaDiscoveryRequest request;
  request.set_type_url(std::string(TypeUrl(type)));
  for (auto& name : subscribe) request.add_resource_names_subscribe(name);
  request.set_response_nonce(std::move(nonce));
  return request;
}

TEST(Incremental, DeltaStreamSeesRemovalsAndSkipsOthersChanges) {
  Generations generations;
  DeltaState state;
  state.OnRequest(DeltaRequest(kEds, {"a"}));
  auto view = generations.Next({{"a", 80}, {"b", 80}});
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  state.OnRequest(DeltaRequest(kEds, {}, out[0].nonce));
  EXPECT_TRUE(state.Poll(*view).empty());

  view = generations.Next({{"a", 80}, {"b", 81}});
  EXPECT_TRUE(state.Poll(*view).empty());
  view = generations.Next({{"b", 81}});  // its cluster goes away
  out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].resources.empty());
  EXPECT_EQ(out[0].removed, (Strings{"a"}));
  state.OnRequest(DeltaRequest(kEds, {}, out[0].nonce));
  view = generations.Next({{"a", 82}, {"b", 81}});  // and comes back
  out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(Names(out[0].resources), (Strings{"a"}));
}

}  // namespace
}  // namespace attache

namespace attache {
namespace {

// ACKs usually repeat the subscription, which is then taken as unchanged
// without copying it; any other list must still change it.
TEST(Incremental, AnAckThatChangesTheNamesIsNotTakenForARepeat) {
  Generations generations;
  SotwState state;
  state.OnRequest(SotwRequest(kEds, {"a", "b"}));
  const auto view = generations.Next({{"a", 80}, {"b", 80}, {"c", 80}});
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  // Same size, a duplicate instead of "b": the subscription is {a}.
  state.OnRequest(SotwRequest(kEds, {"a", "a"}, &out[0]));
  EXPECT_EQ(state.Of(kEds).names, (std::set<std::string, std::less<>>{"a"}));
  // Unsorted and new: {c, a}; "c" goes out.
  state.OnRequest(SotwRequest(kEds, {"c", "a"}));
  out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(Names(out[0].resources), (Strings{"c"}));
  state.OnRequest(SotwRequest(kEds, {"a", "c"}, &out[0]));  // a repeat
  EXPECT_EQ(state.Of(kEds).names,
            (std::set<std::string, std::less<>>{"a", "c"}));
  EXPECT_TRUE(state.Poll(*view).empty());
}

}  // namespace
}  // namespace attache
