#include "xds/server/delta_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace attache {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;

constexpr ResourceType kCds = ResourceType::kCluster;
constexpr ResourceType kEds = ResourceType::kEndpoint;
constexpr ResourceType kLds = ResourceType::kListener;
constexpr ResourceType kRds = ResourceType::kRoute;

struct ServiceSpec {
  std::string name;
  uint32_t port = 80;                       // changes the load assignment only
  LbPolicy policy = LbPolicy::kRoundRobin;  // changes the cluster only
};

// A gRPC view by default: it has all four types.
ViewSnapshotPtr View(const std::vector<ServiceSpec>& services,
                     uint64_t generation = 1, Flavor flavor = Flavor::kGrpc) {
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
  return BuildSnapshotSet(catalog, TranslateOptions{}, nullptr)->For(flavor);
}

DeltaDiscoveryRequest Request(ResourceType type,
                              std::vector<std::string> subscribe = {},
                              std::vector<std::string> unsubscribe = {},
                              std::string nonce = "") {
  DeltaDiscoveryRequest request;
  request.set_type_url(std::string(TypeUrl(type)));
  for (auto& name : subscribe) request.add_resource_names_subscribe(name);
  for (auto& name : unsubscribe) request.add_resource_names_unsubscribe(name);
  request.set_response_nonce(nonce);
  return request;
}

DeltaDiscoveryRequest Ack(const PendingDeltaResponse& response,
                          std::vector<std::string> subscribe = {},
                          std::vector<std::string> unsubscribe = {}) {
  return Request(response.type, std::move(subscribe), std::move(unsubscribe),
                 response.nonce);
}

DeltaDiscoveryRequest Nack(const PendingDeltaResponse& response) {
  DeltaDiscoveryRequest request = Ack(response);
  request.mutable_error_detail()->set_code(3);
  request.mutable_error_detail()->set_message("bad resource");
  return request;
}

std::vector<std::string> Names(const PendingDeltaResponse& response) {
  std::vector<std::string> names;
  for (const auto& resource : response.resources) {
    names.push_back(resource->name);
  }
  return names;
}

std::vector<ResourceType> Types(const std::vector<PendingDeltaResponse>& out) {
  std::vector<ResourceType> types;
  for (const auto& response : out) types.push_back(response.type);
  return types;
}

void AckAll(DeltaState& state, const std::vector<PendingDeltaResponse>& out) {
  for (const auto& response : out) {
    ASSERT_EQ(state.OnRequest(Ack(response)).kind, RequestKind::kAck);
  }
}

using Strings = std::vector<std::string>;

// --- 25, 26: what every response and resource carries ------------------------

TEST(DeltaState, ResponsesCarryTypeNonceVersionAndSharedResources) {
  DeltaState state;
  EXPECT_EQ(state.OnRequest(Request(kCds)).kind, RequestKind::kInitial);
  EXPECT_EQ(state.OnRequest(Request(kEds, {"a", "b"})).kind,
            RequestKind::kInitial);
  const auto view = View({{"a"}, {"b"}});
  auto out = state.Poll(*view);
  ASSERT_EQ(Types(out), (std::vector<ResourceType>{kCds, kEds}));
  std::set<std::string> nonces;
  for (const auto& response : out) {
    EXPECT_FALSE(response.nonce.empty());
    EXPECT_FALSE(response.system_version_info.empty());
    EXPECT_FALSE(response.heartbeat);
    EXPECT_TRUE(response.removed.empty());
    EXPECT_EQ(Names(response), (Strings{"a", "b"}));
    for (const auto& resource : response.resources) {
      // The very resource of the snapshot: name, content version, Any bytes.
      EXPECT_EQ(resource.get(),
                view->Of(response.type).at(resource->name).get());
      EXPECT_FALSE(resource->version.empty());
      EXPECT_EQ(state.Of(response.type).held.at(resource->name),
                resource->version);
    }
    nonces.insert(response.nonce);
    EXPECT_EQ(state.Of(response.type).inflight_nonce, response.nonce);
    EXPECT_EQ(state.Of(response.type).last_nonce, response.nonce);
  }
  EXPECT_EQ(nonces.size(), out.size());
  // Later nonces are new too.
  AckAll(state, out);
  auto next = state.Poll(*View({{"a", 81}, {"b"}}, 2));
  ASSERT_EQ(next.size(), 1U);
  EXPECT_FALSE(nonces.contains(next[0].nonce));
}

TEST(DeltaState, ResourceVersionChangesIffContentChangesAndOnlyChangesGoOut) {
  DeltaState state;
  state.OnRequest(Request(kEds, {"a", "b"}));
  auto first = state.Poll(*View({{"a"}, {"b"}}));
  ASSERT_EQ(first.size(), 1U);
  AckAll(state, first);
  // Rebuilt but equal: same versions, nothing to send.
  const auto equal = View({{"a"}, {"b"}}, 2);
  EXPECT_EQ(equal->Of(kEds).at("a")->version, first[0].resources[0]->version);
  EXPECT_TRUE(state.Poll(*equal).empty());
  const auto changed = View({{"a", 81}, {"b"}}, 3);
  EXPECT_NE(changed->Of(kEds).at("a")->version, first[0].resources[0]->version);
  EXPECT_EQ(changed->Of(kEds).at("b")->version, first[0].resources[1]->version);
  auto next = state.Poll(*changed);
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(Names(next[0]), (Strings{"a"}));
  EXPECT_NE(next[0].system_version_info, first[0].system_version_info);
}

// --- 27: ACK and NACK --------------------------------------------------------
TEST(DeltaState, AnAckMayChangeSubscriptionsAtOnce) {
  DeltaState state;
  state.OnRequest(Request(kEds, {"a"}));
  const auto view = View({{"a"}, {"b"}});
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(state.OnRequest(Ack(out[0], {"b"})).kind, RequestKind::kAck);
  const DeltaTypeState& eds = state.Of(kEds);
  EXPECT_EQ(eds.acks, 1U);
  EXPECT_EQ(eds.acked_version, out[0].system_version_info);
  EXPECT_TRUE(eds.inflight_nonce.empty());
  EXPECT_TRUE(eds.names.contains("b"));
  auto next = state.Poll(*view);
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(Names(next[0]), (Strings{"b"}));
}

TEST(DeltaState, NackIsRecordedAndTheRejectedContentIsNotResent) {
  DeltaState state;
  state.OnRequest(Request(kCds));
  state.OnRequest(Request(kEds, {"a"}));
  auto out = state.Poll(*View({{"a"}}, 1, Flavor::kEnvoy));
  AckAll(state, out);
  const std::string accepted = state.Of(kEds).acked_version;
  auto changed = state.Poll(*View({{"a", 81}}, 2, Flavor::kEnvoy));
  ASSERT_EQ(Types(changed), (std::vector<ResourceType>{kEds}));
  EXPECT_EQ(state.OnRequest(Nack(changed[0])).kind, RequestKind::kNack);
  const DeltaTypeState& eds = state.Of(kEds);
  EXPECT_EQ(eds.nacks, 1U);
  EXPECT_TRUE(eds.rejected);
  EXPECT_TRUE(eds.inflight_nonce.empty());
  EXPECT_EQ(eds.acked_version, accepted);  // a NACK accepts nothing
  ASSERT_TRUE(eds.last_nack.has_value());
  EXPECT_EQ(eds.last_nack->nonce, changed[0].nonce);
  EXPECT_EQ(eds.last_nack->code, 3);
  EXPECT_EQ(eds.last_nack->message, "bad resource");
  EXPECT_EQ(eds.last_nack->version_info, accepted);
  // The same content, even rebuilt, is not sent again...
  EXPECT_TRUE(state.Poll(*View({{"a", 81}}, 3, Flavor::kEnvoy)).empty());
  // ...other types keep flowing...
  auto cds = state.Poll(*View({{"a", 81}, {"z"}}, 4, Flavor::kEnvoy));
  ASSERT_EQ(Types(cds), (std::vector<ResourceType>{kCds}));
  EXPECT_EQ(Names(cds[0]), (Strings{"z"}));
  AckAll(state, cds);
  // ...and newer content goes out.
  auto fixed = state.Poll(*View({{"a", 82}, {"z"}}, 5, Flavor::kEnvoy));
  ASSERT_EQ(Types(fixed), (std::vector<ResourceType>{kEds}));
  EXPECT_EQ(Names(fixed[0]), (Strings{"a"}));
  EXPECT_EQ(state.OnRequest(Ack(fixed[0])).kind, RequestKind::kAck);
  EXPECT_FALSE(state.Of(kEds).rejected);
}

// --- 28: stale nonces --------------------------------------------------------

TEST(DeltaState, StaleNonceIsNeitherAckNorNackButSubscriptionsApply) {
  DeltaState state;
  state.OnRequest(Request(kEds, {"a"}));
  const auto view = View({{"a"}, {"b"}, {"c"}});
  auto first = state.Poll(*view);
  ASSERT_EQ(first.size(), 1U);
  EXPECT_EQ(state.OnRequest(Request(kEds, {"b"}, {}, "bogus")).kind,
            RequestKind::kStale);
  const DeltaTypeState& eds = state.Of(kEds);
  EXPECT_EQ(eds.inflight_nonce, first[0].nonce);  // still awaiting the ACK
  EXPECT_EQ(eds.acks, 0U);
  EXPECT_EQ(eds.nacks, 0U);
  EXPECT_TRUE(eds.names.contains("b"));
  EXPECT_TRUE(state.Poll(*view).empty());  // one response in flight
  state.OnRequest(Ack(first[0]));
  auto second = state.Poll(*view);
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(Names(second[0]), (Strings{"b"}));
  // An old nonce is stale as well; its unsubscribe and subscribe apply.
  EXPECT_EQ(state.OnRequest(Request(kEds, {"c"}, {"a"}, first[0].nonce)).kind,
            RequestKind::kStale);
  EXPECT_FALSE(eds.names.contains("a"));
  EXPECT_TRUE(eds.names.contains("c"));
  state.OnRequest(Ack(second[0]));
  auto third = state.Poll(*view);
  ASSERT_EQ(third.size(), 1U);
  EXPECT_EQ(Names(third[0]), (Strings{"c"}));
  EXPECT_TRUE(third[0].removed.empty());
}

// --- 29, 30: subscribe and unsubscribe ---------------------------------------

TEST(DeltaState, SubscribingSendsTheResourceEvenIfTheClientHoldsIt) {
  DeltaState state;
  state.OnRequest(Request(kEds, {"a"}));
  const auto view = View({{"a"}});
  auto out = state.Poll(*view);
  AckAll(state, out);
  EXPECT_TRUE(state.Poll(*view).empty());
  EXPECT_EQ(state.OnRequest(Request(kEds, {"a"})).kind, RequestKind::kUpdate);
  auto again = state.Poll(*view);
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(Names(again[0]), (Strings{"a"}));
  EXPECT_EQ(again[0].resources[0]->version, out[0].resources[0]->version);
}

TEST(DeltaState, UnsubscribeIgnoresUnknownNamesAndNeedsNoAnswer) {
  DeltaState state;
  state.OnRequest(Request(kEds, {"a", "b"}));
  const auto view = View({{"a"}, {"b"}});
  AckAll(state, state.Poll(*view));
  // A name never subscribed: nothing changes.
  state.OnRequest(Request(kEds, {}, {"never"}));
  EXPECT_EQ(state.Of(kEds).names,
            (std::set<std::string, std::less<>>{"a", "b"}));
  EXPECT_TRUE(state.Poll(*view).empty());
  // An unsubscribe alone is not answered, and later changes of the name are
  // not sent.
  state.OnRequest(Request(kEds, {}, {"a"}));
  EXPECT_FALSE(state.Of(kEds).names.contains("a"));
  EXPECT_FALSE(state.Of(kEds).held.contains("a"));
  EXPECT_TRUE(state.Poll(*view).empty());
  EXPECT_TRUE(state.Poll(*View({{"a", 81}, {"b"}}, 2)).empty());
  // Deleting it is not announced either: the client dropped it already.
  EXPECT_TRUE(state.Poll(*View({{"b"}}, 3)).empty());
  // Subscribing again sends it.
  state.OnRequest(Request(kEds, {"a"}));
  auto back = state.Poll(*View({{"a", 81}, {"b"}}, 4));
  ASSERT_EQ(back.size(), 1U);
  EXPECT_EQ(Names(back[0]), (Strings{"a"}));

  // A wildcard client dropping a name it never subscribed: nothing either.
  DeltaState wildcard;
  wildcard.OnRequest(Request(kCds));
  AckAll(wildcard, wildcard.Poll(*view));
  wildcard.OnRequest(Request(kCds, {}, {"never", "a"}));
  // "a" was never subscribed explicitly: '*' still covers it, held as it is.
  EXPECT_TRUE(wildcard.Of(kCds).held.contains("a"));
  EXPECT_TRUE(wildcard.Poll(*view).empty());
}

TEST(DeltaState, WildcardClientDroppingANameGetsItAgainOrARemoval) {
  DeltaState state;
  state.OnRequest(Request(kCds, {"*", "a", "ghost"}));
  const auto view = View({{"a"}, {"b"}});
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(Names(out[0]), (Strings{"a", "b"}));
  EXPECT_EQ(out[0].removed, (Strings{"ghost"}));
  AckAll(state, out);
  // "a" is still covered by '*': send it again; "ghost" is not: remove it.
  state.OnRequest(Request(kCds, {}, {"a", "ghost"}));
  EXPECT_TRUE(state.Of(kCds).wildcard);
  auto answer = state.Poll(*view);
  ASSERT_EQ(answer.size(), 1U);
  EXPECT_EQ(Names(answer[0]), (Strings{"a"}));
  EXPECT_EQ(answer[0].removed, (Strings{"ghost"}));
  AckAll(state, answer);
  EXPECT_TRUE(state.Poll(*view).empty());
}

// The answer owed to a wildcard client that dropped a name (30) must not get
// lost when a cluster response goes out while listeners and routes are busy
// (removals are then held back, make-before-break).
TEST(DeltaState, RemovalOwedForADroppedNameSurvivesAHeldBackClusterResponse) {
  DeltaState state;
  for (ResourceType type : {kCds, kLds, kRds}) {
    state.OnRequest(Request(type));  // legacy wildcard
  }
  const auto one = View({{"a"}});
  AckAll(state, state.Poll(*one));  // CDS
  AckAll(state, state.Poll(*one));  // LDS, RDS
  state.OnRequest(Request(kCds, {"ghost"}));
  auto absent = state.Poll(*one);
  ASSERT_EQ(absent.size(), 1U);
  EXPECT_EQ(absent[0].removed, (Strings{"ghost"}));
  AckAll(state, absent);
  // The client drops "ghost" while "b" appears: listeners have work, so this
  // cluster response carries additions only...
  state.OnRequest(Request(kCds, {}, {"ghost"}));
  const auto two = View({{"a"}, {"b"}}, 2);
  auto clusters = state.Poll(*two);
  ASSERT_EQ(Types(clusters), (std::vector<ResourceType>{kCds}));
  EXPECT_EQ(Names(clusters[0]), (Strings{"b"}));
  AckAll(state, clusters);
  auto routes = state.Poll(*two);
  ASSERT_EQ(Types(routes), (std::vector<ResourceType>{kLds, kRds}));
  AckAll(state, routes);
  // ...and the removal of "ghost" must follow once they are done.
  auto owed = state.Poll(*two);
  ASSERT_EQ(Types(owed), (std::vector<ResourceType>{kCds}));
  EXPECT_EQ(owed[0].removed, (Strings{"ghost"}));
}

// --- 31: wildcard ------------------------------------------------------------

TEST(DeltaState, LegacyWildcardOnlyOnTheFirstRequestOfAType) {
  DeltaState legacy;
  legacy.OnRequest(Request(kCds));
  EXPECT_TRUE(legacy.Of(kCds).wildcard);

  DeltaState named;
  named.OnRequest(Request(kCds, {"a"}));
  EXPECT_FALSE(named.Of(kCds).wildcard);
  const auto view = View({{"a"}, {"b"}});
  auto out = named.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(Names(out[0]), (Strings{"a"}));
  // An empty request after a name was subscribed is not a wildcard.
  EXPECT_EQ(named.OnRequest(Ack(out[0])).kind, RequestKind::kAck);
  named.OnRequest(Request(kCds));
  EXPECT_FALSE(named.Of(kCds).wildcard);
  EXPECT_TRUE(named.Poll(*view).empty());
}

TEST(DeltaState, ExplicitWildcardSubscribesAndUnsubscribes) {
  DeltaState state;
  state.OnRequest(Request(kCds, {"a"}));
  const auto view = View({{"a"}, {"b"}, {"c"}});
  AckAll(state, state.Poll(*view));
  state.OnRequest(Request(kCds, {"*"}));
  EXPECT_TRUE(state.Of(kCds).wildcard);
  auto everything = state.Poll(*view);
  ASSERT_EQ(everything.size(), 1U);
  EXPECT_EQ(Names(everything[0]), (Strings{"b", "c"}));  // "a" is held
  AckAll(state, everything);
  // Dropping '*' keeps the explicit name; the client forgets the rest by
  // itself, so there is nothing to answer.
  state.OnRequest(Request(kCds, {}, {"*"}));
  EXPECT_FALSE(state.Of(kCds).wildcard);
  EXPECT_TRUE(state.Of(kCds).names.contains("a"));
  EXPECT_EQ(state.Of(kCds).held.size(), 1U);
  EXPECT_TRUE(state.Poll(*view).empty());
  // Resources only '*' covered no longer go out when they change.
  EXPECT_TRUE(
      state.Poll(*View({{"a"}, {"b", 80, LbPolicy::kRingHash}, {"c"}}, 2))
          .empty());
  // '*' again: everything not held comes back.
  state.OnRequest(Request(kCds, {"*"}));
  auto back = state.Poll(*view);
  ASSERT_EQ(back.size(), 1U);
  EXPECT_EQ(Names(back[0]), (Strings{"b", "c"}));
}

// --- 32: names that do not exist ---------------------------------------------

TEST(DeltaState, AbsentNameIsToldOnceAndPushedWhenItAppears) {
  DeltaState state;
  state.OnRequest(Request(kEds, {"later"}));
  auto out = state.Poll(*View({{"a"}}));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].resources.empty());
  EXPECT_EQ(out[0].removed, (Strings{"later"}));
  AckAll(state, out);
  EXPECT_TRUE(state.Of(kEds).names.contains("later"));
  EXPECT_TRUE(state.Poll(*View({{"a"}}, 2)).empty());  // told once
  auto appeared = state.Poll(*View({{"a"}, {"later"}}, 3));
  ASSERT_EQ(appeared.size(), 1U);
  EXPECT_EQ(Names(appeared[0]), (Strings{"later"}));
  EXPECT_TRUE(appeared[0].removed.empty());
  AckAll(state, appeared);
  auto gone = state.Poll(*View({{"a"}}, 4));
  ASSERT_EQ(gone.size(), 1U);
  EXPECT_EQ(gone[0].removed, (Strings{"later"}));
  AckAll(state, gone);
  EXPECT_TRUE(state.Poll(*View({{"a"}}, 5)).empty());
  // Subscribing again is answered again, even with a removal.
  state.OnRequest(Request(kEds, {"later"}));
  auto again = state.Poll(*View({{"a"}}, 6));
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0].removed, (Strings{"later"}));
}

// --- 33: deletions -----------------------------------------------------------
TEST(DeltaState, DeletionOfEveryTypeIsARemovedResourcesEntry) {
  DeltaState state;
  for (ResourceType type : {kCds, kEds, kLds, kRds}) {
    state.OnRequest(Request(type, {"a", "b"}));
  }
  const auto both = View({{"a"}, {"b"}});
  auto clusters = state.Poll(*both);
  ASSERT_EQ(Types(clusters), (std::vector<ResourceType>{kCds, kEds}));
  AckAll(state, clusters);
  auto routes = state.Poll(*both);
  ASSERT_EQ(Types(routes), (std::vector<ResourceType>{kLds, kRds}));
  AckAll(state, routes);

  const auto one = View({{"a"}}, 2);
  std::set<ResourceType> removed_b;
  for (int round = 0; round < 4; ++round) {
    auto out = state.Poll(*one);
    for (const auto& response : out) {
      EXPECT_TRUE(response.resources.empty()) << ShortName(response.type);
      EXPECT_EQ(response.removed, (Strings{"b"})) << ShortName(response.type);
      removed_b.insert(response.type);
    }
    AckAll(state, out);
  }
  EXPECT_EQ(removed_b.size(), 4U);
  for (ResourceType type : {kCds, kEds, kLds, kRds}) {
    EXPECT_FALSE(state.Of(type).held.contains("b")) << ShortName(type);
  }
}

// --- 34: reconnects ----------------------------------------------------------
TEST(DeltaState, ReconnectGetsOnlyMissingOrChangedAndRemovalsOfVanished) {
  const auto view = View({{"a"}, {"b"}, {"c"}});
  DeltaState state;
  DeltaDiscoveryRequest request = Request(kCds);
  auto& held = *request.mutable_initial_resource_versions();
  held["a"] = view->Of(kCds).at("a")->version;  // current
  held["b"] = "0123456789abcdef";               // changed since
  held["gone"] = "fedcba9876543210";            // no longer exists
  EXPECT_EQ(state.OnRequest(request).kind, RequestKind::kInitial);
  auto out = state.Poll(*view);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(Names(out[0]), (Strings{"b", "c"}));
  EXPECT_EQ(out[0].removed, (Strings{"gone"}));
}

TEST(DeltaState, ReconnectWithNothingToCatchUpGetsNoResponse) {
  const auto view = View({{"a"}});
  DeltaState state;
  DeltaDiscoveryRequest request = Request(kEds, {"a"});
  (*request.mutable_initial_resource_versions())["a"] =
      view->Of(kEds).at("a")->version;
  // Not subscribed: the client's claim about it is ignored, not removed.
  (*request.mutable_initial_resource_versions())["x"] = "0123456789abcdef";
  state.OnRequest(request);
  EXPECT_TRUE(state.Poll(*view).empty());
  EXPECT_FALSE(state.Of(kEds).held.contains("x"));
  // It still gets what changes afterwards.
  auto next = state.Poll(*View({{"a", 81}}, 2));
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(Names(next[0]), (Strings{"a"}));
}

TEST(DeltaState, NewClientAlwaysGetsAFirstAnswerEvenEmpty) {
  DeltaState state;
  state.OnRequest(Request(kCds));
  auto out = state.Poll(*View({}));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_TRUE(out[0].resources.empty());
  EXPECT_TRUE(out[0].removed.empty());
  EXPECT_FALSE(out[0].nonce.empty());
  AckAll(state, out);
  EXPECT_TRUE(state.Poll(*View({}, 2)).empty());
}

TEST(DeltaState, FirstRequestWithAForeignNonceIsInitial) {
  DeltaState state;
  EXPECT_EQ(state.OnRequest(Request(kCds, {}, {}, "nonce-from-elsewhere")).kind,
            RequestKind::kInitial);
  EXPECT_EQ(state.Poll(*View({{"a"}})).size(), 1U);
}

// --- 35: resource locators ---------------------------------------------------

TEST(DeltaState, ResourceLocatorsAndDynamicParametersAreIgnored) {
  DeltaState state;
  DeltaDiscoveryRequest request = Request(kEds, {"a"});
  auto* locator = request.add_resource_locators_subscribe();
  locator->set_name("xdstp://elsewhere/x");
  (*locator->mutable_dynamic_parameters())["k"] = "v";
  request.add_resource_locators_unsubscribe()->set_name("y");
  const RequestOutcome outcome = state.OnRequest(request);
  EXPECT_TRUE(outcome.error.empty());
  EXPECT_EQ(outcome.kind, RequestKind::kInitial);
  auto out = state.Poll(*View({{"a"}}));
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(Names(out[0]), (Strings{"a"}));
  EXPECT_TRUE(out[0].removed.empty());
}

// --- flow control and ordering -----------------------------------------------

TEST(DeltaState, OneResponsePerTypeInFlightThenTheLatest) {
  DeltaState state;
  state.OnRequest(Request(kCds));
  auto first = state.Poll(*View({{"a"}}));
  ASSERT_EQ(first.size(), 1U);
  EXPECT_TRUE(state.Poll(*View({{"a"}, {"b"}}, 2)).empty());
  state.OnRequest(Ack(first[0]));
  auto next = state.Poll(*View({{"a"}, {"b"}, {"c"}}, 3));
  ASSERT_EQ(next.size(), 1U);
  EXPECT_EQ(Names(next[0]), (Strings{"b", "c"}));
  EXPECT_NE(next[0].nonce, first[0].nonce);
}

TEST(DeltaState, ChangedClusterResendsItsLoadAssignmentEvenIfUnchanged) {
  DeltaState state;
  state.OnRequest(Request(kCds));
  state.OnRequest(Request(kEds, {"a", "b"}));
  AckAll(state, state.Poll(*View({{"a"}, {"b"}}, 1, Flavor::kEnvoy)));
  auto next = state.Poll(
      *View({{"a", 80, LbPolicy::kRingHash}, {"b"}}, 2, Flavor::kEnvoy));
  ASSERT_EQ(Types(next), (std::vector<ResourceType>{kCds, kEds}));
  EXPECT_EQ(Names(next[0]), (Strings{"a"}));
  EXPECT_EQ(Names(next[1]), (Strings{"a"}));
}

// A reconnecting Envoy lists the load assignment it holds; but its cluster
// changed, so Envoy warms it and waits for the assignment again.
TEST(DeltaState, ClusterChangedBeforeEdsResubscribedResendsTheAssignment) {
  const auto before = View({{"a"}}, 1, Flavor::kEnvoy);
  const auto after = View({{"a", 80, LbPolicy::kRingHash}}, 2, Flavor::kEnvoy);
  DeltaState state;
  DeltaDiscoveryRequest cds = Request(kCds);
  (*cds.mutable_initial_resource_versions())["a"] =
      before->Of(kCds).at("a")->version;
  state.OnRequest(cds);
  auto clusters = state.Poll(*after);
  ASSERT_EQ(Types(clusters), (std::vector<ResourceType>{kCds}));
  EXPECT_EQ(Names(clusters[0]), (Strings{"a"}));
  DeltaDiscoveryRequest eds = Request(kEds, {"a"});
  (*eds.mutable_initial_resource_versions())["a"] =
      after->Of(kEds).at("a")->version;  // the assignment did not change
  state.OnRequest(eds);
  auto endpoints = state.Poll(*after);
  ASSERT_EQ(Types(endpoints), (std::vector<ResourceType>{kEds}));
  EXPECT_EQ(Names(endpoints[0]), (Strings{"a"}));
}

// Found by fuzz/xds_stream_fuzzer: a changed cluster made the server forget
// that the client held the cluster's load assignment (to send it again), so
// when the cluster vanished before that, the assignment was never removed.
TEST(DeltaState, AssignmentOfAClusterChangedWhileInFlightIsStillRemoved) {
  DeltaState state;
  state.OnRequest(Request(kEds));  // wildcard, as the first request names none
  const auto before = View({{"a"}, {"b"}, {"c"}});
  auto endpoints = state.Poll(*before);
  ASSERT_EQ(Types(endpoints), (std::vector<ResourceType>{kEds}));
  state.OnRequest(Request(kCds));
  auto clusters = state.Poll(*before);  // while the assignments are in flight
  ASSERT_EQ(Types(clusters), (std::vector<ResourceType>{kCds}));
  AckAll(state, clusters);
  AckAll(state, endpoints);
  auto out = state.Poll(*View({{"a"}, {"b"}}, 2));  // c is gone
  ASSERT_EQ(Types(out), (std::vector<ResourceType>{kCds, kEds}));
  EXPECT_EQ(out[0].removed, (Strings{"c"}));
  EXPECT_EQ(out[1].removed, (Strings{"c"}));
  EXPECT_EQ(Names(out[1]), (Strings{"a", "b"}));  // their clusters were new
}

// Found by fuzz/xds_stream_fuzzer: a reconnecting client's claim for the
// assignment of a cluster that changed meanwhile was dropped, so the
// assignment was never removed when the cluster went away.
TEST(DeltaState, ClaimedAssignmentOfAChangedClusterIsRemovedWhenItVanishes) {
  const auto first = View({{"a"}, {"c"}});
  DeltaState state;
  state.OnRequest(Request(kCds));
  AckAll(state, state.Poll(*first));
  const auto second = View({{"a"}}, 2);
  AckAll(state, state.Poll(*second));  // removes cluster c
  DeltaDiscoveryRequest eds = Request(kEds);
  for (const char* name : {"a", "c"}) {
    (*eds.mutable_initial_resource_versions())[name] =
        first->Of(kEds).at(name)->version;
  }
  state.OnRequest(eds);
  auto out = state.Poll(*second);
  ASSERT_EQ(Types(out), (std::vector<ResourceType>{kEds}));
  EXPECT_EQ(Names(out[0]), (Strings{"a"}));  // its cluster changed: again
  EXPECT_EQ(out[0].removed, (Strings{"c"}));
}

// Found by fuzz/xds_stream_fuzzer: a NACK recorded the rejected versions
// only for names whose version the server still had on record, so after a
// cluster change or a repeated subscription the same bytes went out again.
TEST(DeltaState, RejectedBytesStayRejectedAfterAClusterChangeOrResubscribe) {
  const auto view = View({{"a"}, {"b"}});
  {
    DeltaState state;
    state.OnRequest(Request(kEds, {"a", "b"}));
    auto endpoints = state.Poll(*view);
    state.OnRequest(Request(kCds));
    AckAll(state, state.Poll(*view));  // clears what EDS holds
    ASSERT_EQ(state.OnRequest(Nack(endpoints[0])).kind, RequestKind::kNack);
    EXPECT_TRUE(state.Poll(*view).empty());
  }
  {
    DeltaState state;
    state.OnRequest(Request(kEds, {"a", "b"}));
    auto endpoints = state.Poll(*view);
    state.OnRequest(Request(kEds, {"a"}));  // again, while in flight
    ASSERT_EQ(state.OnRequest(Nack(endpoints[0])).kind, RequestKind::kNack);
    EXPECT_TRUE(state.Poll(*view).empty());
  }
}

TEST(DeltaState, ClusterRemovalWaitsUntilListenersAndRoutesAreDone) {
  DeltaState state;
  const Strings names = {"a", "b", "c"};
  for (ResourceType type : {kLds, kRds, kCds, kEds}) {
    state.OnRequest(Request(type, names));
  }
  const auto before = View({{"a"}, {"b"}});
  auto first = state.Poll(*before);
  // Listeners and routes wait for the clusters they need.
  ASSERT_EQ(Types(first), (std::vector<ResourceType>{kCds, kEds}));
  AckAll(state, first);
  auto routes = state.Poll(*before);
  ASSERT_EQ(Types(routes), (std::vector<ResourceType>{kLds, kRds}));
  AckAll(state, routes);

  // One edit replaces "b" with "c": clusters add "c" but keep "b"...
  const auto after = View({{"a"}, {"c"}}, 2);
  auto adds = state.Poll(*after);
  ASSERT_FALSE(adds.empty());
  EXPECT_EQ(adds[0].type, kCds);
  EXPECT_EQ(Names(adds[0]), (Strings{"c"}));
  EXPECT_TRUE(adds[0].removed.empty());
  for (const auto& response : adds) {
    EXPECT_NE(response.type, kLds);
    EXPECT_NE(response.type, kRds);
  }
  AckAll(state, adds);
  // ...then listeners and routes move...
  auto moved = state.Poll(*after);
  ASSERT_EQ(Types(moved), (std::vector<ResourceType>{kLds, kRds}));
  for (const auto& response : moved) {
    EXPECT_EQ(Names(response), (Strings{"c"}));
    EXPECT_EQ(response.removed, (Strings{"b"}));
  }
  EXPECT_TRUE(state.Poll(*after).empty());  // both still in flight
  AckAll(state, moved);
  // ...and only then the cluster goes.
  auto last = state.Poll(*after);
  ASSERT_EQ(Types(last), (std::vector<ResourceType>{kCds}));
  EXPECT_TRUE(last[0].resources.empty());
  EXPECT_EQ(last[0].removed, (Strings{"b"}));
}

TEST(DeltaState, ListenersAndRoutesWaitWhileClustersAreInFlightOrRejected) {
  DeltaState state;
  for (ResourceType type : {kCds, kLds, kRds}) {
    state.OnRequest(Request(type, {"a"}));
  }
  auto cds = state.Poll(*View({{"a"}}));
  ASSERT_EQ(Types(cds), (std::vector<ResourceType>{kCds}));
  EXPECT_TRUE(state.Poll(*View({{"a"}})).empty());  // CDS in flight
  state.OnRequest(Nack(cds[0]));
  EXPECT_TRUE(state.Poll(*View({{"a"}})).empty());  // CDS rejected
  auto fixed = state.Poll(*View({{"a", 80, LbPolicy::kRingHash}}, 2));
  ASSERT_EQ(Types(fixed), (std::vector<ResourceType>{kCds}));
  AckAll(state, fixed);
  auto routes = state.Poll(*View({{"a", 80, LbPolicy::kRingHash}}, 2));
  EXPECT_EQ(Types(routes), (std::vector<ResourceType>{kLds, kRds}));
}

TEST(DeltaState, LargeEdsAnswersAreSplitUnderFourMebibytes) {
  CatalogSnapshot catalog;
  catalog.generation = 1;
  Strings names;
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
  size_t total = 0;
  for (const auto& name : names) {
    total += view->Of(kEds).at(name)->response_field.size();
  }
  ASSERT_GT(total, kMaxResponseBytes);  // or the test proves nothing
  DeltaState state;
  state.OnRequest(Request(kEds, names));
  std::set<std::string> received;
  int responses = 0;
  for (int round = 0; round < 5 && received.size() < names.size(); ++round) {
    auto out = state.Poll(*view);
    ASSERT_EQ(out.size(), 1U);
    size_t bytes = 0;
    for (const auto& resource : out[0].resources) {
      bytes += resource->response_field.size();
      EXPECT_TRUE(received.insert(resource->name).second) << resource->name;
    }
    EXPECT_LE(bytes, kMaxResponseBytes);
    ++responses;
    AckAll(state, out);
  }
  EXPECT_GT(responses, 1);
  EXPECT_EQ(received.size(), names.size());
  EXPECT_TRUE(state.Poll(*view).empty());
}

// --- heartbeats --------------------------------------------------------------
TEST(DeltaState, HeartbeatsOnlyForCurrentHeldResourcesAndNotWhileInFlight) {
  DeltaState state;
  EXPECT_TRUE(state.Heartbeats(*View({{"a"}})).empty());  // nothing requested
  state.OnRequest(Request(kCds));
  state.OnRequest(Request(kEds, {"a", "b"}));
  const auto view = View({{"a"}, {"b"}}, 1, Flavor::kEnvoy);
  auto out = state.Poll(*view);
  ASSERT_EQ(Types(out), (std::vector<ResourceType>{kCds, kEds}));
  EXPECT_TRUE(state.Heartbeats(*view).empty());  // both awaiting answers
  state.OnRequest(Ack(out[0]));
  auto beats = state.Heartbeats(*view);
  ASSERT_EQ(Types(beats), (std::vector<ResourceType>{kCds}));
  EXPECT_TRUE(beats[0].heartbeat);
  EXPECT_EQ(Names(beats[0]), (Strings{"a", "b"}));
  EXPECT_TRUE(beats[0].removed.empty());
  EXPECT_FALSE(beats[0].nonce.empty());
  EXPECT_NE(beats[0].nonce, out[0].nonce);
  EXPECT_NE(beats[0].nonce, out[1].nonce);
  // A heartbeat is a response like any other: one in flight per type.
  EXPECT_EQ(state.Of(kCds).inflight_nonce, beats[0].nonce);
  EXPECT_TRUE(state.Heartbeats(*view).empty());
  const auto changed =
      View({{"a"}, {"b", 80, LbPolicy::kRingHash}}, 2, Flavor::kEnvoy);
  EXPECT_TRUE(state.Poll(*changed).empty());  // CDS heartbeat in flight
  state.OnRequest(Ack(beats[0]));
  state.OnRequest(Ack(out[1]));
  // "b" changed and is not sent yet: a heartbeat must not confirm the old
  // version, so only "a" is refreshed.
  auto next = state.Heartbeats(*changed);
  ASSERT_EQ(Types(next), (std::vector<ResourceType>{kCds, kEds}));
  EXPECT_EQ(Names(next[0]), (Strings{"a"}));
  EXPECT_EQ(Names(next[1]), (Strings{"a", "b"}));
  AckAll(state, next);
  // A heartbeat changes nothing the client holds: the change still goes out.
  auto update = state.Poll(*changed);
  ASSERT_FALSE(update.empty());
  EXPECT_EQ(update[0].type, kCds);
  EXPECT_FALSE(update[0].heartbeat);
  EXPECT_EQ(Names(update[0]), (Strings{"b"}));
  AckAll(state, update);
  // Vanished resources are not heartbeaten either.
  const auto shrunk = View({{"a"}}, 3, Flavor::kEnvoy);
  auto removal = state.Poll(*shrunk);
  AckAll(state, removal);
  auto last = state.Heartbeats(*shrunk);
  ASSERT_EQ(Types(last), (std::vector<ResourceType>{kCds, kEds}));
  EXPECT_EQ(Names(last[0]), (Strings{"a"}));
  EXPECT_EQ(Names(last[1]), (Strings{"a"}));
}

TEST(DeltaState, NoHeartbeatForATypeTheClientHoldsNothingOf) {
  DeltaState state;
  state.OnRequest(Request(kEds, {"missing"}));
  const auto view = View({{"a"}});
  AckAll(state, state.Poll(*view));
  EXPECT_TRUE(state.Heartbeats(*view).empty());
}

// A heartbeat confirms what the client holds. After a NACK the client still
// holds the version before the rejected one: a body-less Resource naming the
// rejected version is not a heartbeat to Envoy (its version does not match).
TEST(DeltaState, HeartbeatsNeverClaimARejectedVersion) {
  DeltaState state;
  state.OnRequest(Request(kEds, {"a", "b"}));
  AckAll(state, state.Poll(*View({{"a"}, {"b"}}, 1, Flavor::kEnvoy)));
  const auto changed = View({{"a", 81}, {"b"}}, 2, Flavor::kEnvoy);
  auto rejected = state.Poll(*changed);
  ASSERT_EQ(rejected.size(), 1U);
  ASSERT_EQ(Names(rejected[0]), (Strings{"a"}));
  state.OnRequest(Nack(rejected[0]));
  auto beats = state.Heartbeats(*changed);
  ASSERT_EQ(beats.size(), 1U);  // "b" is still held and current
  for (const auto& resource : beats[0].resources) {
    EXPECT_NE(resource->version, rejected[0].resources[0]->version)
        << resource->name;
  }
  const Strings refreshed = Names(beats[0]);
  EXPECT_TRUE(std::ranges::find(refreshed, "b") != refreshed.end());
}

// With TTLs, a resource that is not refreshed expires at the client (Envoy
// then drops the cluster or listener). A NACK leaves the client holding the
// version before the rejected one: heartbeats must keep refreshing that one,
// or one rejected update turns into an outage after one TTL.
TEST(DeltaState, HeartbeatsKeepRefreshingTheVersionKeptAfterANack) {
  DeltaState state;
  state.OnRequest(Request(kCds));
  const auto before = View({{"a"}, {"b"}}, 1, Flavor::kEnvoy);
  auto accepted = state.Poll(*before);
  ASSERT_EQ(accepted.size(), 1U);
  AckAll(state, accepted);
  const std::string kept = before->Of(kCds).at("a")->version;
  const auto changed =
      View({{"a", 80, LbPolicy::kRingHash}, {"b"}}, 2, Flavor::kEnvoy);
  auto rejected = state.Poll(*changed);
  ASSERT_EQ(rejected.size(), 1U);
  state.OnRequest(Nack(rejected[0]));
  auto beats = state.Heartbeats(*changed);
  ASSERT_EQ(beats.size(), 1U);
  std::map<std::string, std::string> refreshed;
  for (const auto& resource : beats[0].resources) {
    refreshed[resource->name] = resource->version;
  }
  EXPECT_EQ(refreshed,
            (std::map<std::string, std::string>{
                {"a", kept}, {"b", before->Of(kCds).at("b")->version}}));
}

// --- type URLs ---------------------------------------------------------------

TEST(DeltaState, TypeUrlRules) {
  DeltaState ads;
  EXPECT_TRUE(ads.OnRequest(Request(kCds)).error.empty());
  DeltaDiscoveryRequest empty;
  EXPECT_FALSE(ads.OnRequest(empty).error.empty());
  DeltaDiscoveryRequest unknown;
  unknown.set_type_url("type.googleapis.com/envoy.extensions.Unknown");
  const auto ignored = ads.OnRequest(unknown);
  EXPECT_TRUE(ignored.error.empty());
  EXPECT_FALSE(ignored.type.has_value());
  EXPECT_EQ(ignored.kind, RequestKind::kIgnored);

  DeltaState eds_only(kEds);
  DeltaDiscoveryRequest untyped;
  untyped.add_resource_names_subscribe("a");
  const auto implied = eds_only.OnRequest(untyped);
  EXPECT_TRUE(implied.error.empty());
  EXPECT_EQ(implied.type, kEds);
  EXPECT_TRUE(eds_only.Of(kEds).names.contains("a"));
  EXPECT_TRUE(eds_only.OnRequest(Request(kEds, {"b"})).error.empty());
  const auto wrong = eds_only.OnRequest(Request(kCds, {"c"}));
  EXPECT_FALSE(wrong.error.empty());
  EXPECT_FALSE(eds_only.Of(kCds).requested);
  EXPECT_FALSE(eds_only.Of(kEds).names.contains("c"));
}

}  // namespace
}  // namespace attache
