#include "xds/server/sotw_state.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace attache {
namespace {

using envoy::service::discovery::v3::DiscoveryRequest;
using Kind = SotwState::RequestKind;

constexpr ResourceType kCds = ResourceType::kCluster;
constexpr ResourceType kEds = ResourceType::kEndpoint;
constexpr ResourceType kLds = ResourceType::kListener;
constexpr ResourceType kRds = ResourceType::kRoute;

struct ServiceSpec {
  std::string name;
  uint32_t port = 80;
  LbPolicy policy = LbPolicy::kRoundRobin;
};

ViewSnapshotPtr View(const std::vector<ServiceSpec>& services,
                     uint64_t generation = 1) {
  CatalogSnapshot catalog;
  catalog.generation = generation;
  for (const auto& spec : services) {
    Endpoint endpoint;
    endpoint.address = "127.0.0.1";
    endpoint.port = spec.port;
    Service service;
    service.endpoints = {endpoint};
    service.settings.lb_policy = spec.policy;
    catalog.services[spec.name] = service;
  }
  return BuildSnapshotSet(catalog, TranslateOptions{}, nullptr)
      ->For(Flavor::kGrpc);
}

DiscoveryRequest Request(ResourceType type, std::vector<std::string> names = {},
                         std::string nonce = "") {
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

DiscoveryRequest Nack(const PendingResponse& response,
                      std::vector<std::string> names = {}) {
  DiscoveryRequest request =
      Request(response.type, std::move(names), response.nonce);
  request.set_version_info("");
  request.mutable_error_detail()->set_code(3);
  request.mutable_error_detail()->set_message("bad cluster");
  return request;
}

std::vector<std::string> Names(const PendingResponse& response) {
  std::vector<std::string> names;
  for (const auto& resource : response.resources)
    names.push_back(resource->name);
  return names;
}

TEST(SotwState, InitialWildcardCdsIsAnsweredWithEverything) {
  SotwState state;
  EXPECT_EQ(state.OnRequest(Request(kCds)).kind, Kind::kInitial);
  auto out = state.Poll(*View({{"a"}, {"b"}}));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].type, kCds);
  EXPECT_EQ(Names(out[0]), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(out[0].version_info.empty());
  EXPECT_FALSE(out[0].nonce.empty());
  EXPECT_TRUE(state.Of(kCds).wildcard);
}

TEST(SotwState, AnInitialRequestForNothingStillGetsAnAnswer) {
  SotwState state;
  state.OnRequest(Request(kEds, {"missing"}));
  auto out = state.Poll(*View({{"a"}}));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].resources.empty());
}

TEST(SotwState, AckTriggersNothingAndUnchangedContentIsNotResent) {
  SotwState state;
  state.OnRequest(Request(kCds));
  auto view = View({{"a"}});
  auto out = state.Poll(*view);
  EXPECT_EQ(state.OnRequest(Ack(out[0])).kind, Kind::kAck);
  EXPECT_EQ(state.Of(kCds).acked_version, out[0].version_info);
  EXPECT_TRUE(state.Poll(*view).empty());
  // A rebuilt but equal snapshot changes nothing either.
  EXPECT_TRUE(state.Poll(*View({{"a"}}, 2)).empty());
}

TEST(SotwState, OneResponsePerTypeInFlightThenTheLatest) {
  SotwState state;
  state.OnRequest(Request(kCds));
  auto first = state.Poll(*View({{"a"}}));
  ASSERT_EQ(first.size(), 1U);
  EXPECT_TRUE(state.Poll(*View({{"a"}, {"b"}}, 2)).empty());  // awaiting ACK
  state.OnRequest(Ack(first[0]));
  auto next = state.Poll(*View({{"a"}, {"b"}, {"c"}}, 3));
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(Names(next[0]), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_NE(next[0].nonce, first[0].nonce);
  EXPECT_NE(next[0].version_info, first[0].version_info);
}

TEST(SotwState, NackIsRecordedAndTheSameContentIsNeverResent) {
  SotwState state;
  state.OnRequest(Request(kCds));
  auto view = View({{"a"}});
  auto out = state.Poll(*view);
  EXPECT_EQ(state.OnRequest(Nack(out[0])).kind, Kind::kNack);
  const TypeState& cds = state.Of(kCds);
  EXPECT_EQ(cds.nacks, 1U);
  ASSERT_TRUE(cds.last_nack.has_value());
  EXPECT_EQ(cds.last_nack->message, "bad cluster");
  EXPECT_EQ(cds.last_nack->nonce, out[0].nonce);
  EXPECT_TRUE(state.Poll(*view).empty());
  EXPECT_TRUE(state.Poll(*View({{"a"}}, 2)).empty());
  // New content goes out.
  auto next = state.Poll(*View({{"a", 81, LbPolicy::kRingHash}}, 3));
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(next[0].type, kCds);
}

TEST(SotwState, StaleNonceIsNeitherAckNorNackButUpdatesSubscription) {
  SotwState state;
  state.OnRequest(Request(kEds, {"a"}));
  auto view = View({{"a"}, {"b"}});
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(state.OnRequest(Request(kEds, {"a", "b"}, "bogus")).kind,
            Kind::kStale);
  EXPECT_FALSE(state.Of(kEds).inflight_nonce.empty());  // still awaiting ACK
  EXPECT_TRUE(state.Of(kEds).names.contains("b"));
  EXPECT_TRUE(state.Poll(*view).empty());
  state.OnRequest(Ack(out[0], {"a", "b"}));
  auto next = state.Poll(*view);
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(Names(next[0]),
            (std::vector<std::string>{"b"}));  // only what is new
}

TEST(SotwState, WildcardRules) {
  SotwState state;
  state.OnRequest(Request(kLds));
  EXPECT_TRUE(state.Of(kLds).wildcard);
  auto view = View({{"a"}, {"b"}});
  auto out = state.Poll(*view);
  EXPECT_EQ(out[0].resources.size(), 2U);
  // Naming a resource ends the legacy wildcard; '*' keeps it explicitly.
  state.OnRequest(Ack(out[0], {"*", "a"}));
  EXPECT_TRUE(state.Of(kLds).wildcard);
  state.OnRequest(Request(kLds, {"a"}, out[0].nonce));
  EXPECT_FALSE(state.Of(kLds).wildcard);
  auto narrowed = state.Poll(*view);
  ASSERT_EQ(narrowed.size(), 1U);
  EXPECT_EQ(Names(narrowed[0]), (std::vector<std::string>{"a"}));
  // Once a name was sent, an empty list means nothing, not everything.
  state.OnRequest(Request(kLds, {}, narrowed[0].nonce));
  EXPECT_FALSE(state.Of(kLds).wildcard);
  auto nothing = state.Poll(*view);
  ASSERT_EQ(nothing.size(), 1U);
  EXPECT_TRUE(nothing[0].resources.empty());
}

TEST(SotwState, EmptyEdsListIsNotAWildcard) {
  SotwState state;
  state.OnRequest(Request(kEds));
  EXPECT_FALSE(state.Of(kEds).wildcard);
  auto out = state.Poll(*View({{"a"}}));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].resources.empty());
}

TEST(SotwState, FullStateTypesResendEverythingSubsetTypesOnlyChanges) {
  SotwState state;
  state.OnRequest(Request(kCds, {"a", "b"}));
  state.OnRequest(Request(kEds, {"a", "b"}));
  auto out = state.Poll(*View({{"a"}, {"b"}}));
  ASSERT_EQ(out.size(), 2U);
  state.OnRequest(Ack(out[0], {"a", "b"}));
  state.OnRequest(Ack(out[1], {"a", "b"}));
  auto next = state.Poll(*View({{"a", 81, LbPolicy::kRingHash}, {"b"}}, 2));
  ASSERT_EQ(next.size(), 2U);
  EXPECT_EQ(next[0].type, kCds);
  EXPECT_EQ(Names(next[0]), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(next[1].type, kEds);
  EXPECT_EQ(Names(next[1]), (std::vector<std::string>{"a"}));
}

TEST(SotwState, ChangedClusterResendsItsAssignmentEvenIfUnchanged) {
  SotwState state;
  state.OnRequest(Request(kCds));
  state.OnRequest(Request(kEds, {"a", "b"}));
  auto out = state.Poll(*View({{"a"}, {"b"}}));
  state.OnRequest(Ack(out[0]));
  state.OnRequest(Ack(out[1], {"a", "b"}));
  // Only the cluster's lb policy changes, not its endpoints.
  auto next = state.Poll(*View({{"a", 80, LbPolicy::kRingHash}, {"b"}}, 2));
  ASSERT_EQ(next.size(), 2U);
  EXPECT_EQ(next[0].type, kCds);
  EXPECT_EQ(next[1].type, kEds);
  EXPECT_EQ(Names(next[1]), (std::vector<std::string>{"a"}));
}

TEST(SotwState, RemembersSubscriptionsToMissingNames) {
  SotwState state;
  state.OnRequest(Request(kEds, {"later"}));
  auto out = state.Poll(*View({{"a"}}));
  state.OnRequest(Ack(out[0], {"later"}));
  EXPECT_TRUE(state.Poll(*View({{"a"}}, 2)).empty());
  auto appeared = state.Poll(*View({{"a"}, {"later"}}, 3));
  ASSERT_EQ(appeared.size(), 1U);
  EXPECT_EQ(Names(appeared[0]), (std::vector<std::string>{"later"}));
}

TEST(SotwState, ResubscribingSendsAgainEvenIfUnchanged) {
  SotwState state;
  state.OnRequest(Request(kEds, {"a"}));
  auto view = View({{"a"}});
  auto out = state.Poll(*view);
  state.OnRequest(Ack(out[0], {}));
  EXPECT_TRUE(state.Poll(*view).empty());
  state.OnRequest(Request(kEds, {"a"}, out[0].nonce));
  auto again = state.Poll(*view);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(Names(again[0]), (std::vector<std::string>{"a"}));
}

TEST(SotwState, RoutesWaitForClusterAckAndClusterRemovalGoesLast) {
  SotwState state;
  for (ResourceType type : {kLds, kRds, kCds}) {
    state.OnRequest(Request(type, {"a", "b"}));
  }
  auto out = state.Poll(*View({{"a"}, {"b"}}));
  ASSERT_EQ(out.size(), 1U);  // CDS first; LDS/RDS wait for its ACK
  EXPECT_EQ(out[0].type, kCds);
  state.OnRequest(Ack(out[0], {"a", "b"}));
  auto rest = state.Poll(*View({{"a"}, {"b"}}));
  ASSERT_EQ(rest.size(), 2U);
  EXPECT_EQ(rest[0].type, kLds);
  EXPECT_EQ(rest[1].type, kRds);
  state.OnRequest(Ack(rest[0], {"a", "b"}));
  state.OnRequest(Ack(rest[1], {"a", "b"}));
  // "b" goes away: listener first, the cluster only after that is done.
  auto removal = state.Poll(*View({{"a"}}, 2));
  ASSERT_EQ(removal.size(), 1U);
  EXPECT_EQ(removal[0].type, kLds);
  state.OnRequest(Ack(removal[0], {"a", "b"}));
  auto last = state.Poll(*View({{"a"}}, 2));
  ASSERT_EQ(last.size(), 1U);
  EXPECT_EQ(last[0].type, kCds);
  EXPECT_EQ(Names(last[0]), (std::vector<std::string>{"a"}));
}

TEST(SotwState, ClusterReplacedByAnotherStaysUntilRoutesMoved) {
  SotwState state;
  const std::vector<std::string> names = {"a", "b", "c"};
  for (ResourceType type : {kLds, kRds, kCds}) {
    state.OnRequest(Request(type, names));
  }
  auto cds = state.Poll(*View({{"a"}, {"b"}}));
  state.OnRequest(Ack(cds[0], names));
  for (const auto& response : state.Poll(*View({{"a"}, {"b"}}))) {
    state.OnRequest(Ack(response, names));
  }
  // One edit removes "b" and adds "c": clusters first, keeping "b".
  auto first = state.Poll(*View({{"a"}, {"c"}}, 2));
  ASSERT_EQ(first.size(), 1U);
  EXPECT_EQ(first[0].type, kCds);
  EXPECT_EQ(Names(first[0]), (std::vector<std::string>{"a", "b", "c"}));
  state.OnRequest(Ack(first[0], names));
  auto routes = state.Poll(*View({{"a"}, {"c"}}, 2));
  ASSERT_EQ(routes.size(), 2U);
  EXPECT_EQ(routes[0].type, kLds);
  EXPECT_EQ(routes[1].type, kRds);
  for (const auto& response : routes) {
    state.OnRequest(Ack(response, names));
  }
  auto last = state.Poll(*View({{"a"}, {"c"}}, 2));
  ASSERT_EQ(last.size(), 1U);
  EXPECT_EQ(last[0].type, kCds);
  EXPECT_EQ(Names(last[0]), (std::vector<std::string>{"a", "c"}));
}

TEST(SotwState, RouteToARejectedClusterWaitsForACdsTheClientAccepted) {
  SotwState state;
  for (ResourceType type : {kLds, kRds, kCds}) {
    state.OnRequest(Request(type, {"a"}));
  }
  auto cds = state.Poll(*View({{"a"}}));
  ASSERT_EQ(cds.size(), 1U);
  state.OnRequest(Nack(cds[0], {"a"}));
  // The listener (on RDS) names no cluster and goes; the route to "a" waits.
  auto listener = state.Poll(*View({{"a"}}));
  ASSERT_EQ(listener.size(), 1U);
  EXPECT_EQ(listener[0].type, kLds);
  state.OnRequest(Ack(listener[0], {"a"}));
  EXPECT_TRUE(state.Poll(*View({{"a"}})).empty());
  EXPECT_TRUE(state.Poll(*View({{"a"}}, 2)).empty());
  // A CDS the client accepts releases the route.
  auto fixed = state.Poll(*View({{"a", 80, LbPolicy::kRingHash}}, 3));
  ASSERT_EQ(fixed.size(), 1U);
  EXPECT_EQ(fixed[0].type, kCds);
  state.OnRequest(Ack(fixed[0], {"a"}));
  EXPECT_TRUE(state.Of(kCds).suspects.empty());
  auto route = state.Poll(*View({{"a", 80, LbPolicy::kRingHash}}, 3));
  ASSERT_EQ(route.size(), 1U);
  EXPECT_EQ(route[0].type, kRds);
  EXPECT_EQ(Names(route[0]), (std::vector<std::string>{"a"}));
}

// A gRPC client sharing one ADS stream across targets: it answers every
// response (NACKing the types it is told to) and changes a subscription with
// a request carrying the type's latest nonce.
class SharedStream {
 public:
  void Ask(ResourceType type, std::vector<std::string> names) {
    names_[type] = names;
    auto it = last_.find(type);
    state_.OnRequest(it == last_.end() ? Request(type, std::move(names))
                                       : Ack(it->second, std::move(names)));
  }
  std::vector<PendingResponse> Poll(const ViewSnapshot& view,
                                    std::set<ResourceType> nack = {}) {
    auto out = state_.Poll(view);
    for (const PendingResponse& response : out) {
      last_.insert_or_assign(response.type, response);
      state_.OnRequest(nack.contains(response.type)
                           ? Nack(response, names_[response.type])
                           : Ack(response, names_[response.type]));
    }
    return out;
  }
  // The route of `name` again, as a channel that closes and dials it anew.
  std::vector<PendingResponse> RedialRoute(const std::string& name,
                                           const ViewSnapshot& view) {
    std::vector<std::string> names = names_[kRds];
    std::erase(names, name);
    Ask(kRds, names);
    Poll(view);
    names.push_back(name);
    Ask(kRds, names);
    return Poll(view);
  }
  std::vector<std::string> Suspects() const {
    std::vector<std::string> names;
    for (const auto& resource : state_.Of(kCds).suspects) {
      names.push_back(resource->name);
    }
    return names;
  }
  const SotwState& state() const { return state_; }

 private:
  SotwState state_;
  std::map<ResourceType, PendingResponse> last_;
  std::map<ResourceType, std::vector<std::string>> names_;
};

std::vector<ResourceType> Types(const std::vector<PendingResponse>& out) {
  std::vector<ResourceType> types;
  for (const auto& response : out) types.push_back(response.type);
  return types;
}

// `base` seen as another flavor of client.
ViewSnapshotPtr AsFlavor(const ViewSnapshot& base, Flavor flavor) {
  auto view = std::make_shared<ViewSnapshot>(base);
  view->key.flavor = flavor;
  return view;
}

// The first target's listener and route go out, then its cluster, which the
// client rejects: what a gRPC client does when it cannot take a Cluster.
void DialRejectedTarget(SharedStream& client, const ViewSnapshot& view) {
  client.Ask(kLds, {"bad"});
  ASSERT_EQ(Types(client.Poll(view)), std::vector<ResourceType>{kLds});
  client.Ask(kRds, {"bad"});
  ASSERT_EQ(Types(client.Poll(view)), std::vector<ResourceType>{kRds});
  client.Ask(kCds, {"bad"});
  ASSERT_EQ(Types(client.Poll(view, {kCds})), std::vector<ResourceType>{kCds});
  ASSERT_TRUE(client.state().Of(kCds).rejected);
  ASSERT_EQ(client.Suspects(), std::vector<std::string>{"bad"});
}

TEST(SotwState, AfterACdsNackANewTargetWhoseClusterIsFineIsAnswered) {
  const auto view =
      View({{"bad", 80, LbPolicy::kLeastRequest}, {"good"}, {"other"}});
  SharedStream client;
  DialRejectedTarget(client, *view);
  EXPECT_TRUE(client.Poll(*view).empty());

  client.Ask(kLds, {"bad", "good"});
  auto listeners = client.Poll(*view);
  ASSERT_EQ(Types(listeners), std::vector<ResourceType>{kLds});
  EXPECT_EQ(Names(listeners[0]), (std::vector<std::string>{"bad", "good"}));
  client.Ask(kRds, {"bad", "good"});
  auto routes = client.Poll(*view);
  ASSERT_EQ(Types(routes), std::vector<ResourceType>{kRds});
  EXPECT_EQ(Names(routes[0]), std::vector<std::string>{"good"});
  // The route to the rejected cluster, asked for again, still waits.
  EXPECT_TRUE(client.RedialRoute("bad", *view).empty());
}

TEST(SotwState, SecondNackWithTheNewTargetsClusterDoesNotHoldItsRoutes) {
  const auto view =
      View({{"bad", 80, LbPolicy::kLeastRequest}, {"good"}, {"other"}});
  SharedStream client;
  DialRejectedTarget(client, *view);
  client.Ask(kLds, {"bad", "good"});
  client.Poll(*view);
  client.Ask(kRds, {"bad", "good"});
  client.Poll(*view);

  // The client asks for the new target's cluster; the response still carries
  // the bad one, so it is NACKed again (the client keeps "good", which it
  // validated on its own). Routes wait while that response is in flight.
  client.Ask(kCds, {"bad", "good"});
  client.Ask(kLds, {"bad", "good", "other"});
  auto cds = client.Poll(*view, {kCds});
  ASSERT_EQ(Types(cds), std::vector<ResourceType>{kCds});
  EXPECT_EQ(Names(cds[0]), (std::vector<std::string>{"bad", "good"}));
  // The unchanged "bad" explains the second NACK: "good" is no suspect.
  EXPECT_EQ(client.Suspects(), std::vector<std::string>{"bad"});
  auto listeners = client.Poll(*view);
  ASSERT_EQ(Types(listeners), std::vector<ResourceType>{kLds});
  auto again = client.RedialRoute("good", *view);
  ASSERT_EQ(Types(again), std::vector<ResourceType>{kRds});
  EXPECT_EQ(Names(again[0]), std::vector<std::string>{"good"});
  EXPECT_TRUE(client.RedialRoute("bad", *view).empty());
}

TEST(SotwState, ClientsThatMayRejectAResponseWholeGetNoPresumption) {
  // Envoy rejects a whole CDS response when one cluster fails proto
  // validation: "good" came only in rejected responses, so it may lack it.
  const auto view = AsFlavor(
      *View({{"bad", 80, LbPolicy::kLeastRequest}, {"good"}}), Flavor::kEnvoy);
  SharedStream client;
  DialRejectedTarget(client, *view);
  client.Ask(kRds, {"bad", "good"});
  auto routes = client.Poll(*view);  // "good" was in no CDS response yet
  ASSERT_EQ(Types(routes), std::vector<ResourceType>{kRds});
  client.Ask(kCds, {"bad", "good"});
  ASSERT_EQ(Types(client.Poll(*view, {kCds})), std::vector<ResourceType>{kCds});
  EXPECT_TRUE(client.RedialRoute("good", *view).empty());
  // Once it ACKs a CDS, everything flows.
  const auto fixed = AsFlavor(*View({{"bad"}, {"good"}}, 2), Flavor::kEnvoy);
  ASSERT_EQ(Types(client.Poll(*fixed)), std::vector<ResourceType>{kCds});
  auto released = client.Poll(*fixed);
  ASSERT_EQ(Types(released), std::vector<ResourceType>{kRds});
  EXPECT_EQ(Names(released[0]), std::vector<std::string>{"good"});
}

TEST(SotwState, SuspectsFollowWhatCanExplainEachNack) {
  const auto view = View({{"bad", 80, LbPolicy::kLeastRequest}, {"good"}});
  SharedStream client;
  DialRejectedTarget(client, *view);
  client.Ask(kRds, {"bad", "good"});
  client.Poll(*view);
  client.Ask(kCds, {"bad", "good"});
  client.Poll(*view, {kCds});
  ASSERT_EQ(client.Suspects(), std::vector<std::string>{"bad"});

  // "bad" changes and is rejected again: the changed cluster is the suspect,
  // "good" (unchanged, presumed taken) is not.
  const auto changed = View({{"bad", 81, LbPolicy::kRingHash}, {"good"}}, 2);
  ASSERT_EQ(Types(client.Poll(*changed, {kCds})),
            std::vector<ResourceType>{kCds});
  EXPECT_EQ(client.Suspects(), std::vector<std::string>{"bad"});
  EXPECT_NE(client.state().Of(kCds).suspects[0]->version,
            view->Of(kCds).at("bad")->version);
  EXPECT_EQ(Types(client.RedialRoute("good", *changed)),
            std::vector<ResourceType>{kRds});

  // The client drops "bad" and still rejects what is left: then "good" is
  // what it refuses, and routes to it wait.
  client.Ask(kCds, {"good"});
  ASSERT_EQ(Types(client.Poll(*changed, {kCds})),
            std::vector<ResourceType>{kCds});
  EXPECT_EQ(client.Suspects(), std::vector<std::string>{"good"});
  EXPECT_TRUE(client.RedialRoute("good", *changed).empty());

  // An ACK clears the suspects and releases the route.
  const auto accepted = View(
      {{"bad", 81, LbPolicy::kRingHash}, {"good", 80, LbPolicy::kRingHash}}, 3);
  ASSERT_EQ(Types(client.Poll(*accepted)), std::vector<ResourceType>{kCds});
  EXPECT_TRUE(client.Suspects().empty());
  EXPECT_FALSE(client.state().Of(kCds).rejected);
  auto released = client.Poll(*accepted);
  ASSERT_EQ(Types(released), std::vector<ResourceType>{kRds});
  EXPECT_EQ(Names(released[0]), std::vector<std::string>{"good"});
}

TEST(SotwState, ClustersFirstSentWithTheRejectedOneAreSuspectsToo) {
  // Both clusters are new in the rejected response: either may be the one.
  const auto view = View({{"a"}, {"b"}});
  SotwState state;
  for (ResourceType type : {kCds, kLds, kRds}) {
    state.OnRequest(Request(type, {"a", "b"}));
  }
  auto cds = state.Poll(*view);
  ASSERT_EQ(Types(cds), std::vector<ResourceType>{kCds});
  state.OnRequest(Nack(cds[0], {"a", "b"}));
  EXPECT_EQ(state.Of(kCds).suspects.size(), 2U);
  auto out = state.Poll(*view);
  ASSERT_EQ(Types(out), std::vector<ResourceType>{kLds});
}

TEST(SotwState, ListenerWithInlineRoutesToARejectedClusterHoldsLds) {
  envoy::extensions::filters::network::http_connection_manager::v3::
      HttpConnectionManager manager;
  auto* route =
      manager.mutable_route_config()->add_virtual_hosts()->add_routes();
  route->mutable_route()->set_cluster("bad");
  envoy::config::listener::v3::Listener listener;
  listener.set_name("inline");
  listener.mutable_api_listener()->mutable_api_listener()->PackFrom(manager);
  const auto base = View({{"bad", 80, LbPolicy::kLeastRequest}, {"good"}});
  auto view = std::make_shared<ViewSnapshot>(*base);
  auto listeners = std::make_shared<ResourceMap>(base->Of(kLds));
  listeners->emplace("inline",
                     MakeResource(ResourceType::kListener, "inline", listener));
  view->resources[Index(kLds)] = listeners;
  view->changes[Index(kLds)] = nullptr;

  SharedStream client;
  client.Ask(kCds, {"bad"});
  ASSERT_EQ(Types(client.Poll(*view, {kCds})), std::vector<ResourceType>{kCds});
  // Leaving "inline" out of a full-state response would remove it: all wait.
  client.Ask(kLds, {"good", "inline"});
  EXPECT_TRUE(client.Poll(*view).empty());
  client.Ask(kLds, {"good"});
  auto out = client.Poll(*view);
  ASSERT_EQ(Types(out), std::vector<ResourceType>{kLds});
  EXPECT_EQ(Names(out[0]), std::vector<std::string>{"good"});
}

TEST(SotwState, FirstRequestWithForeignVersionAndNonceIsInitial) {
  SotwState state;
  DiscoveryRequest request = Request(kCds, {}, "nonce-from-another-server");
  request.set_version_info("old-version");
  EXPECT_EQ(state.OnRequest(request).kind, Kind::kInitial);
  EXPECT_EQ(state.Poll(*View({{"a"}})).size(), 1U);
}

TEST(SotwState, TypeUrlRules) {
  SotwState ads;
  EXPECT_TRUE(ads.OnRequest(Request(kCds)).error.empty());
  DiscoveryRequest empty;
  EXPECT_FALSE(ads.OnRequest(empty).error.empty());
  DiscoveryRequest unknown;
  unknown.set_type_url("type.googleapis.com/envoy.extensions.Unknown");
  const auto ignored = ads.OnRequest(unknown);
  EXPECT_TRUE(ignored.error.empty());
  EXPECT_FALSE(ignored.type.has_value());

  SotwState eds_only(kEds);
  EXPECT_EQ(eds_only.OnRequest(empty).type, kEds);
  EXPECT_FALSE(eds_only.OnRequest(Request(kCds)).error.empty());
}

TEST(SotwState, LargeEdsAnswersAreSplitUnderFourMebibytes) {
  CatalogSnapshot catalog;
  catalog.generation = 1;
  std::vector<std::string> names;
  for (int s = 0; s < 3; ++s) {
    Service service;
    for (uint32_t i = 0; i < 60'000; ++i) {
      Endpoint endpoint;
      endpoint.address = "10." + std::to_string(s) + "." +
                         std::to_string(i / 256) + "." +
                         std::to_string(i % 256);
      endpoint.port = 8080;
      service.endpoints.push_back(endpoint);
    }
    names.push_back("big" + std::to_string(s));
    catalog.services[names.back()] = service;
  }
  const auto view = BuildSnapshotSet(catalog, TranslateOptions{}, nullptr)
                        ->For(Flavor::kEnvoy);
  SotwState state;
  state.OnRequest(Request(kEds, names));
  std::set<std::string> received;
  for (int round = 0; round < 5 && received.size() < names.size(); ++round) {
    auto out = state.Poll(*view);
    ASSERT_EQ(out.size(), 1U);
    size_t bytes = 0;
    for (const auto& resource : out[0].resources) {
      bytes += resource->response_field.size();
      received.insert(resource->name);
    }
    EXPECT_LE(bytes, kMaxResponseBytes);
    state.OnRequest(Ack(out[0], names));
  }
  EXPECT_EQ(received.size(), names.size());
  EXPECT_TRUE(state.Poll(*view).empty());
}

TEST(SotwState, NoncesAreUniqueAcrossTypes) {
  SotwState state;
  for (ResourceType type : {kCds, kEds, kLds, kRds}) {
    state.OnRequest(Request(type, {"a"}));
  }
  auto out = state.Poll(*View({{"a"}}));
  std::set<std::string> nonces;
  for (const auto& response : out) nonces.insert(response.nonce);
  EXPECT_EQ(nonces.size(), out.size());
}

}  // namespace
}  // namespace attache
