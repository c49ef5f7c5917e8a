#include <gtest/gtest.h>

#include <map>
#include <set>

#include "translate/translate.h"

namespace attache {
namespace {

namespace endpoint_v3 = envoy::config::endpoint::v3;

Endpoint At(const std::string& address, Locality locality, uint32_t weight = 1,
            Health health = Health::kHealthy) {
  Endpoint endpoint;
  endpoint.address = address;
  endpoint.port = 8080;
  endpoint.locality = std::move(locality);
  endpoint.weight = weight;
  endpoint.health = health;
  return endpoint;
}

// r1/z1 (weights 1 + 4), r1/z2 (2), r2/z3 (3).
Service ThreeZones() {
  Service service;
  service.endpoints = {
      At("10.0.1.1", {"r1", "z1", ""}, 1), At("10.0.1.2", {"r1", "z1", ""}, 4),
      At("10.0.2.1", {"r1", "z2", ""}, 2), At("10.2.3.1", {"r2", "z3", ""}, 3)};
  return service;
}

std::string Key(const envoy::config::core::v3::Locality& locality) {
  return locality.region() + "/" + locality.zone() + "/" + locality.sub_zone();
}

// Locality "region/zone/sub_zone" -> priority.
std::map<std::string, uint32_t> Priorities(
    const endpoint_v3::ClusterLoadAssignment& assignment) {
  std::map<std::string, uint32_t> out;
  for (const auto& group : assignment.endpoints()) {
    out[Key(group.locality())] = group.priority();
  }
  return out;
}

// Locality "region/zone/sub_zone" -> locality weight.
std::map<std::string, uint32_t> Weights(
    const endpoint_v3::ClusterLoadAssignment& assignment) {
  std::map<std::string, uint32_t> out;
  for (const auto& group : assignment.endpoints()) {
    out[Key(group.locality())] = group.load_balancing_weight().value();
  }
  return out;
}

// What gRPC's xDS client checks in every ClusterLoadAssignment (checklist
// 41): localities set, weights > 0, priorities 0..n without gaps, no
// (locality, priority) pair twice, no address twice, endpoint weights > 0.
void ExpectValidForGrpc(const endpoint_v3::ClusterLoadAssignment& assignment) {
  std::set<uint32_t> priorities;
  std::set<std::pair<std::string, uint32_t>> pairs;
  std::set<std::pair<std::string, uint32_t>> addresses;
  for (const auto& group : assignment.endpoints()) {
    EXPECT_TRUE(group.has_locality());
    EXPECT_TRUE(group.has_load_balancing_weight());
    EXPECT_GT(group.load_balancing_weight().value(), 0U)
        << Key(group.locality());
    priorities.insert(group.priority());
    EXPECT_TRUE(pairs.emplace(Key(group.locality()), group.priority()).second)
        << "locality " << Key(group.locality()) << " twice at priority "
        << group.priority();
    for (const auto& lb_endpoint : group.lb_endpoints()) {
      const auto& socket = lb_endpoint.endpoint().address().socket_address();
      EXPECT_TRUE(
          addresses.emplace(socket.address(), socket.port_value()).second)
          << socket.address();
      EXPECT_GT(lb_endpoint.load_balancing_weight().value(), 0U);
    }
  }
  uint32_t expected = 0;
  for (uint32_t priority : priorities) {
    EXPECT_EQ(priority, expected++) << "priorities have a gap";
  }
}

using PriorityMap = std::map<std::string, uint32_t>;

// --- flat --------------------------------------------------------------------
TEST(Failover, FlatIsOneLevelWeightedByEndpointsFromEverywhere) {
  const Service service = ThreeZones();
  const auto here =
      MakeLoadAssignment("svc", service, FailoverPolicy::kFlat, {"r1", "z1"});
  ExpectValidForGrpc(here);
  EXPECT_EQ(Priorities(here),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 0}, {"r2/z3/", 0}}));
  EXPECT_EQ(Weights(here),
            (PriorityMap{{"r1/z1/", 5}, {"r1/z2/", 2}, {"r2/z3/", 3}}));
  // The place does not matter.
  for (const ClientPlace& place :
       {ClientPlace{}, ClientPlace{"r2", "z3"}, ClientPlace{"r9", "z9"}}) {
    EXPECT_EQ(MakeLoadAssignment("svc", service, FailoverPolicy::kFlat, place)
                  .SerializeAsString(),
              here.SerializeAsString())
        << place.region << "/" << place.zone;
  }
}

// --- zone-failover -----------------------------------------------------------
TEST(Failover, ZoneFailoverRanksZoneThenRegionThenElsewhere) {
  const auto out = MakeLoadAssignment(
      "svc", ThreeZones(), FailoverPolicy::kZoneFailover, {"r1", "z1"});
  ExpectValidForGrpc(out);
  EXPECT_EQ(Priorities(out),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 1}, {"r2/z3/", 2}}));
  // Locality weights stay the endpoints' sums.
  EXPECT_EQ(Weights(out),
            (PriorityMap{{"r1/z1/", 5}, {"r1/z2/", 2}, {"r2/z3/", 3}}));
  const auto far = MakeLoadAssignment(
      "svc", ThreeZones(), FailoverPolicy::kZoneFailover, {"r2", "z3"});
  ExpectValidForGrpc(far);
  EXPECT_EQ(Priorities(far),
            (PriorityMap{{"r1/z1/", 1}, {"r1/z2/", 1}, {"r2/z3/", 0}}));
}

TEST(Failover, ZoneFailoverCompactsPriorities) {
  Service service;
  service.endpoints = {At("10.0.1.1", {"r1", "z1", ""}),
                       At("10.2.3.1", {"r2", "z3", ""})};
  // Nothing else in r1: "elsewhere" is 1, not 2.
  const auto out = MakeLoadAssignment(
      "svc", service, FailoverPolicy::kZoneFailover, {"r1", "z1"});
  ExpectValidForGrpc(out);
  EXPECT_EQ(Priorities(out), (PriorityMap{{"r1/z1/", 0}, {"r2/z3/", 1}}));
  // Nothing in the client's zone: its region is 0.
  const auto no_zone = MakeLoadAssignment(
      "svc", ThreeZones(), FailoverPolicy::kZoneFailover, {"r1", "z9"});
  ExpectValidForGrpc(no_zone);
  EXPECT_EQ(Priorities(no_zone),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 0}, {"r2/z3/", 1}}));
  // Nothing near at all: one level.
  const auto nowhere = MakeLoadAssignment(
      "svc", ThreeZones(), FailoverPolicy::kZoneFailover, {"r9", "z9"});
  ExpectValidForGrpc(nowhere);
  EXPECT_EQ(Priorities(nowhere),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 0}, {"r2/z3/", 0}}));
}

TEST(Failover, ZoneFailoverRegionLevelForAClientWithOnlyARegion) {
  const auto out = MakeLoadAssignment(
      "svc", ThreeZones(), FailoverPolicy::kZoneFailover, {"r1", ""});
  ExpectValidForGrpc(out);
  EXPECT_EQ(Priorities(out),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 0}, {"r2/z3/", 1}}));
}

TEST(Failover, ZoneFailoverMatchesAZoneOnlyWithinItsRegion) {
  Service service;
  service.endpoints = {At("10.0.1.1", {"r1", "z1", ""}),
                       At("10.2.1.1", {"r2", "z1", ""}),
                       At("10.0.2.1", {"r1", "z2", ""})};
  const auto out = MakeLoadAssignment(
      "svc", service, FailoverPolicy::kZoneFailover, {"r1", "z1"});
  ExpectValidForGrpc(out);
  EXPECT_EQ(Priorities(out),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 1}, {"r2/z1/", 2}}));
}

TEST(Failover, ZoneFailoverSubZonesOfTheClientZoneShareItsLevel) {
  Service service;
  service.endpoints = {At("10.0.1.1", {"r1", "z1", "east"}),
                       At("10.0.1.2", {"r1", "z1", "west"}),
                       At("10.0.2.1", {"r1", "z2", "east"})};
  const auto out = MakeLoadAssignment(
      "svc", service, FailoverPolicy::kZoneFailover, {"r1", "z1"});
  ExpectValidForGrpc(out);
  EXPECT_EQ(
      Priorities(out),
      (PriorityMap{{"r1/z1/east", 0}, {"r1/z1/west", 0}, {"r1/z2/east", 1}}));
}

TEST(Failover, ZoneFailoverDemotesALevelWithoutAHealthyEndpoint) {
  Service service = ThreeZones();
  // Both z1 endpoints unhealthy or draining: z2 takes over at priority 0.
  service.endpoints[0].health = Health::kUnhealthy;
  service.endpoints[1].health = Health::kDraining;
  const auto out = MakeLoadAssignment(
      "svc", service, FailoverPolicy::kZoneFailover, {"r1", "z1"});
  ExpectValidForGrpc(out);
  EXPECT_EQ(Priorities(out),
            (PriorityMap{{"r1/z2/", 0}, {"r2/z3/", 1}, {"r1/z1/", 2}}));
  // One healthy endpoint keeps the zone first.
  service.endpoints[1].health = Health::kHealthy;
  const auto back = MakeLoadAssignment(
      "svc", service, FailoverPolicy::kZoneFailover, {"r1", "z1"});
  EXPECT_EQ(Priorities(back),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 1}, {"r2/z3/", 2}}));
  // Several unhealthy levels keep their order behind the healthy ones.
  service.endpoints[1].health = Health::kUnhealthy;
  service.endpoints[3].health = Health::kUnhealthy;
  const auto two_down = MakeLoadAssignment(
      "svc", service, FailoverPolicy::kZoneFailover, {"r1", "z1"});
  ExpectValidForGrpc(two_down);
  EXPECT_EQ(Priorities(two_down),
            (PriorityMap{{"r1/z2/", 0}, {"r1/z1/", 1}, {"r2/z3/", 2}}));
  // Nothing healthy anywhere: still proximity order, from 0.
  service.endpoints[2].health = Health::kDraining;
  const auto all_down = MakeLoadAssignment(
      "svc", service, FailoverPolicy::kZoneFailover, {"r1", "z1"});
  ExpectValidForGrpc(all_down);
  EXPECT_EQ(Priorities(all_down),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 1}, {"r2/z3/", 2}}));
}

TEST(Failover, ZoneFailoverClientWithoutLocalityGetsOneLevel) {
  Service service = ThreeZones();
  const auto out =
      MakeLoadAssignment("svc", service, FailoverPolicy::kZoneFailover, {});
  ExpectValidForGrpc(out);
  EXPECT_EQ(Priorities(out),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 0}, {"r2/z3/", 0}}));
  // ...with unhealthy levels behind.
  service.endpoints[2].health = Health::kUnhealthy;
  const auto demoted =
      MakeLoadAssignment("svc", service, FailoverPolicy::kZoneFailover, {});
  ExpectValidForGrpc(demoted);
  EXPECT_EQ(Priorities(demoted),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 1}, {"r2/z3/", 0}}));
}

// --- weighted ----------------------------------------------------------------
double Share(const std::map<std::string, uint32_t>& weights,
             const std::set<std::string>& localities) {
  double part = 0;
  double total = 0;
  for (const auto& [locality, weight] : weights) {
    total += weight;
    if (localities.contains(locality)) part += weight;
  }
  return part / total;
}

TEST(Failover, WeightedGivesTheClientZoneLocalPercent) {
  const Service service = ThreeZones();
  for (uint32_t percent : {80U, 50U, 95U, 1U}) {
    const auto out = MakeLoadAssignment(
        "svc", service, FailoverPolicy::kWeighted, {"r1", "z1"}, percent);
    ExpectValidForGrpc(out);
    EXPECT_EQ(Priorities(out),
              (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 0}, {"r2/z3/", 0}}));
    const auto weights = Weights(out);
    EXPECT_NEAR(Share(weights, {"r1/z1/"}), percent / 100.0, 0.001) << percent;
    // The rest is shared by endpoint weight: z2 (2) and z3 (3).
    EXPECT_NEAR(
        static_cast<double>(weights.at("r1/z2/")) / weights.at("r2/z3/"),
        2.0 / 3.0, 0.01)
        << percent;
  }
  // The documented example: 80 % gives 8000 against 2000.
  Service two;
  two.endpoints = {At("10.0.1.1", {"r1", "z1", ""}),
                   At("10.0.2.1", {"r1", "z2", ""})};
  EXPECT_EQ(Weights(MakeLoadAssignment("svc", two, FailoverPolicy::kWeighted,
                                       {"r1", "z1"}, 80)),
            (PriorityMap{{"r1/z1/", 8000}, {"r1/z2/", 2000}}));
}

TEST(Failover, WeightedSplitsTheLocalShareAmongLocalSubZones) {
  Service service;
  service.endpoints = {At("10.0.1.1", {"r1", "z1", "east"}, 3),
                       At("10.0.1.2", {"r1", "z1", "west"}, 1),
                       At("10.0.2.1", {"r1", "z2", ""}, 7)};
  const auto weights = Weights(MakeLoadAssignment(
      "svc", service, FailoverPolicy::kWeighted, {"r1", "z1"}, 60));
  EXPECT_NEAR(Share(weights, {"r1/z1/east", "r1/z1/west"}), 0.60, 0.001);
  EXPECT_NEAR(
      static_cast<double>(weights.at("r1/z1/east")) / weights.at("r1/z1/west"),
      3.0, 0.01);
}

TEST(Failover, WeightedWeightsStayPositiveAtOneHundredPercent) {
  const auto out = MakeLoadAssignment(
      "svc", ThreeZones(), FailoverPolicy::kWeighted, {"r1", "z1"}, 100);
  ExpectValidForGrpc(out);
  EXPECT_GT(Share(Weights(out), {"r1/z1/"}), 0.999);
}

TEST(Failover, WeightedWithoutLocalOrRemoteEndpointsIsPlainProportions) {
  const PriorityMap plain{{"r1/z1/", 5}, {"r1/z2/", 2}, {"r2/z3/", 3}};
  // A client without a locality.
  EXPECT_EQ(Weights(MakeLoadAssignment("svc", ThreeZones(),
                                       FailoverPolicy::kWeighted, {}, 80)),
            plain);
  // A client in a zone without endpoints.
  EXPECT_EQ(
      Weights(MakeLoadAssignment("svc", ThreeZones(), FailoverPolicy::kWeighted,
                                 {"r1", "z9"}, 80)),
      plain);
  // Only local endpoints.
  Service local;
  local.endpoints = {At("10.0.1.1", {"r1", "z1", "a"}, 2),
                     At("10.0.1.2", {"r1", "z1", "b"}, 6)};
  EXPECT_EQ(Weights(MakeLoadAssignment("svc", local, FailoverPolicy::kWeighted,
                                       {"r1", "z1"}, 80)),
            (PriorityMap{{"r1/z1/a", 2}, {"r1/z1/b", 6}}));
}

// Zone names are usually unique: a side that names no region still matches
// by zone (Envoy's --service-zone, endpoints that carry only a zone).
TEST(Failover, ZoneMatchesWhenOneSideNamesNoRegion) {
  Service service;
  service.endpoints = {At("10.0.1.1", {"r1", "z1", ""}),
                       At("10.0.9.1", {"", "z2", ""}),
                       At("10.2.3.1", {"r2", "z3", ""})};
  const auto zone_only_client = MakeLoadAssignment(
      "svc", service, FailoverPolicy::kZoneFailover, {"", "z1"});
  ExpectValidForGrpc(zone_only_client);
  EXPECT_EQ(Priorities(zone_only_client),
            (PriorityMap{{"r1/z1/", 0}, {"/z2/", 1}, {"r2/z3/", 1}}));
  const auto zone_only_endpoint = MakeLoadAssignment(
      "svc", service, FailoverPolicy::kZoneFailover, {"r1", "z2"});
  ExpectValidForGrpc(zone_only_endpoint);
  EXPECT_EQ(Priorities(zone_only_endpoint),
            (PriorityMap{{"r1/z1/", 1}, {"/z2/", 0}, {"r2/z3/", 2}}));
  EXPECT_NEAR(
      Share(Weights(MakeLoadAssignment(
                "svc", service, FailoverPolicy::kWeighted, {"", "z1"}, 80)),
            {"r1/z1/"}),
      0.80, 0.001);
}

// --- clusters and per-service policies ---------------------------------------
TEST(Failover, ClusterGetsLocalityWeightedConfigOnlyForWeighted) {
  ServiceDefaults defaults;
  Service service = ThreeZones();
  for (FailoverPolicy policy :
       {FailoverPolicy::kFlat, FailoverPolicy::kZoneFailover}) {
    service.settings.failover = policy;
    const auto cluster = MakeCluster("svc", service, defaults);
    EXPECT_FALSE(cluster.common_lb_config().has_locality_weighted_lb_config())
        << FailoverPolicyName(policy);
  }
  service.settings.failover = FailoverPolicy::kWeighted;
  EXPECT_TRUE(MakeCluster("svc", service, defaults)
                  .common_lb_config()
                  .has_locality_weighted_lb_config());
  // From the defaults too, unless the service says otherwise.
  defaults.failover = FailoverPolicy::kWeighted;
  service.settings.failover.reset();
  EXPECT_TRUE(MakeCluster("svc", service, defaults)
                  .common_lb_config()
                  .has_locality_weighted_lb_config());
  service.settings.failover = FailoverPolicy::kFlat;
  EXPECT_FALSE(MakeCluster("svc", service, defaults)
                   .common_lb_config()
                   .has_locality_weighted_lb_config());
}

TEST(Failover, PerServicePolicyOverridesTheDefault) {
  ServiceDefaults defaults;
  defaults.failover = FailoverPolicy::kZoneFailover;
  Service plain = ThreeZones();
  EXPECT_EQ(FailoverOf(plain, defaults), FailoverPolicy::kZoneFailover);
  Service flat = ThreeZones();
  flat.settings.failover = FailoverPolicy::kFlat;
  EXPECT_EQ(FailoverOf(flat, defaults), FailoverPolicy::kFlat);
  Service weighted = ThreeZones();
  weighted.settings.failover = FailoverPolicy::kWeighted;

  CatalogSnapshot catalog;
  catalog.services["a-default"] = plain;
  catalog.services["b-flat"] = flat;
  catalog.services["c-weighted"] = weighted;
  TranslateOptions options;
  options.defaults = defaults;
  options.defaults.local_percent = 70;
  const auto out =
      Translate(catalog, options, ViewKey{Flavor::kEnvoy, {"r1", "z1"}});
  ASSERT_EQ(out.endpoints.size(), 3U);
  EXPECT_EQ(Priorities(out.endpoints[0]),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 1}, {"r2/z3/", 2}}));
  EXPECT_EQ(Priorities(out.endpoints[1]),
            (PriorityMap{{"r1/z1/", 0}, {"r1/z2/", 0}, {"r2/z3/", 0}}));
  EXPECT_EQ(Weights(out.endpoints[1]),
            (PriorityMap{{"r1/z1/", 5}, {"r1/z2/", 2}, {"r2/z3/", 3}}));
  // defaults.local_percent reaches weighted services.
  EXPECT_NEAR(Share(Weights(out.endpoints[2]), {"r1/z1/"}), 0.70, 0.001);
  ASSERT_EQ(out.clusters.size(), 3U);
  EXPECT_FALSE(
      out.clusters[0].common_lb_config().has_locality_weighted_lb_config());
  EXPECT_FALSE(
      out.clusters[1].common_lb_config().has_locality_weighted_lb_config());
  EXPECT_TRUE(
      out.clusters[2].common_lb_config().has_locality_weighted_lb_config());
}

TEST(Failover, PlacedOnlyTranslationLeavesFlatServicesOut) {
  CatalogSnapshot catalog;
  catalog.services["flat"] = ThreeZones();
  Service zoned = ThreeZones();
  zoned.settings.failover = FailoverPolicy::kZoneFailover;
  catalog.services["zoned"] = zoned;
  Service weighted = ThreeZones();
  weighted.settings.failover = FailoverPolicy::kWeighted;
  catalog.services["weighted"] = weighted;
  const auto placed =
      TranslateEndpoints(catalog, TranslateOptions{}, {"r1", "z1"}, true);
  std::vector<std::string> names;
  for (const auto& assignment : placed) {
    names.push_back(assignment.cluster_name());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"weighted", "zoned"}));
  EXPECT_EQ(TranslateEndpoints(catalog, TranslateOptions{}, {"r1", "z1"}, false)
                .size(),
            3U);
}

}  // namespace
}  // namespace attache
