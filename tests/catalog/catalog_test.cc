#include "catalog/catalog.h"

#include <gtest/gtest.h>

#include <thread>

namespace attache {
namespace {

Endpoint At(const std::string& address, uint32_t port,
            const std::string& origin) {
  Endpoint endpoint;
  endpoint.address = address;
  endpoint.port = port;
  endpoint.origin = origin;
  return endpoint;
}

TEST(Catalog, MergesSourcesAndDropsDuplicateAddresses) {
  Catalog catalog({"a", "b"});
  EXPECT_FALSE(catalog.AllSynced());
  catalog.Update(
      "b", {{"echo",
             Service{{}, {At("10.0.0.1", 80, "b"), At("10.0.0.2", 80, "b")}}}});
  EXPECT_FALSE(catalog.AllSynced());
  ServiceSettings settings;
  settings.lb_policy = LbPolicy::kRingHash;
  catalog.Update("a", {{"echo", Service{settings, {At("10.0.0.1", 80, "a")}}},
                       {"other", Service{}}});
  EXPECT_TRUE(catalog.AllSynced());
  const auto snapshot = catalog.Current();
  const Service& echo = *snapshot->services.at("echo");
  ASSERT_EQ(echo.endpoints.size(), 2U);
  EXPECT_EQ(echo.endpoints[0].origin, "a");  // first source by name wins
  EXPECT_EQ(echo.endpoints[1].address, "10.0.0.2");
  EXPECT_EQ(echo.settings.lb_policy, LbPolicy::kRingHash);
  EXPECT_TRUE(snapshot->services.contains("other"));
}

TEST(Catalog, NotifiesOnlyOnRealChange) {
  Catalog catalog({"a"});
  int changes = 0;
  catalog.SetChangeListener([&changes] { ++changes; });
  const ServiceMap services = {{"echo", Service{{}, {At("1.2.3.4", 1, "a")}}}};
  catalog.Update("a", services);
  EXPECT_EQ(changes, 1);
  const uint64_t generation = catalog.Current()->generation;
  catalog.Update("a", services);
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(catalog.Current()->generation, generation);
}

// Later stages tell unchanged services by their address alone, and a change
// costs only the services it touches: a service that did not change stays the
// very object it was, whoever sent the update.
TEST(Catalog, UnchangedServicesStayTheSameObjectAcrossGenerations) {
  Catalog catalog({"a", "b"});
  catalog.Update("a", {{"alone", Service{{}, {At("10.0.0.1", 80, "a")}}},
                       {"both", Service{{}, {At("10.0.0.2", 80, "a")}}}});
  catalog.Update("b", {{"both", Service{{}, {At("10.0.0.3", 80, "b")}}}});
  const auto first = catalog.Current();
  ASSERT_EQ(first->services.at("both")->endpoints.size(), 2U);

  // A service only one source has is that source's object, not a copy.
  ServiceMap from_a = {{"alone", Service{{}, {At("10.0.0.1", 80, "a")}}},
                       {"both", Service{{}, {At("10.0.0.2", 80, "a")}}},
                       {"new", Service{{}, {At("10.0.0.4", 80, "a")}}}};
  const SharedService sent = from_a.at("new");
  catalog.Update("a", from_a);
  const auto second = catalog.Current();
  EXPECT_EQ(second->generation, first->generation + 1);
  EXPECT_TRUE(second->services.at("new").SameObject(sent));
  // Sent again as new but equal objects: the catalog keeps what it had,
  // merged ones included.
  EXPECT_TRUE(
      second->services.at("alone").SameObject(first->services.at("alone")));
  EXPECT_TRUE(
      second->services.at("both").SameObject(first->services.at("both")));

  // Another source's change leaves this source's services as they were.
  catalog.Update("b", {{"both", Service{{}, {At("10.0.0.5", 80, "b")}}}});
  const auto third = catalog.Current();
  EXPECT_EQ(third->services.at("both")->endpoints[1].address, "10.0.0.5");
  EXPECT_TRUE(
      third->services.at("alone").SameObject(second->services.at("alone")));
  EXPECT_TRUE(third->services.at("new").SameObject(sent));
  // A change whose merge comes out the same (the added address is a's, and
  // the first source wins) is no change at all.
  catalog.Update(
      "b", {{"both",
             Service{{}, {At("10.0.0.5", 80, "b"), At("10.0.0.2", 80, "b")}}}});
  EXPECT_EQ(catalog.Current(), third);

  // Removal from one of two sources re-merges; from the only one removes.
  catalog.Update("b", {});
  catalog.Update("a", {{"both", Service{{}, {At("10.0.0.2", 80, "a")}}}});
  const auto last = catalog.Current();
  EXPECT_EQ(last->services.size(), 1U);
  ASSERT_EQ(last->services.at("both")->endpoints.size(), 1U);
  EXPECT_EQ(last->services.at("both")->endpoints[0].address, "10.0.0.2");
}

TEST(Catalog, AStaleSourceKeepsServingUntilItsLimit) {
  Catalog catalog({"k8s", "file"});
  catalog.Update("k8s", {{"echo", Service{{}, {At("10.0.0.1", 80, "k8s")}}}});
  catalog.Update("file", {{"other", Service{}}});
  catalog.ReportError("k8s", "connection refused");
  auto status = catalog.Sources().at("k8s");
  EXPECT_EQ(status.state, SourceStatus::State::kStale);
  EXPECT_EQ(status.last_error, "connection refused");
  // No limit: served forever.
  catalog.ExpireStale({{"k8s", std::chrono::milliseconds(0)}});
  EXPECT_EQ(catalog.Current()->services.at("echo")->endpoints.size(), 1U);
  // A limit that has passed withdraws that source only.
  catalog.ExpireStale({{"k8s", std::chrono::milliseconds(1)}});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the limit
  catalog.ExpireStale({{"k8s", std::chrono::milliseconds(1)}});
  EXPECT_FALSE(catalog.Current()->services.contains("echo"));
  EXPECT_TRUE(catalog.Current()->services.contains("other"));
  EXPECT_TRUE(catalog.Sources().at("k8s").expired);
  // Back: served again, no longer stale.
  catalog.Update("k8s", {{"echo", Service{{}, {At("10.0.0.1", 80, "k8s")}}}});
  EXPECT_TRUE(catalog.Current()->services.contains("echo"));
  EXPECT_EQ(catalog.Sources().at("k8s").state, SourceStatus::State::kSynced);
}

TEST(Catalog, APartialUpdateServesWhatAnsweredButStaysStale) {
  Catalog catalog({"reg"});
  catalog.Update("reg", {{"a", Service{{}, {At("10.0.0.1", 80, "reg")}}}});
  catalog.ReportError("reg", "service b: HTTP 503");
  catalog.Update("reg", {{"a", Service{{}, {At("10.0.0.2", 80, "reg")}}}},
                 Catalog::Freshness::kPartial);
  EXPECT_EQ(catalog.Current()->services.at("a")->endpoints[0].address,
            "10.0.0.2");
  EXPECT_EQ(catalog.Sources().at("reg").state, SourceStatus::State::kStale);
  // The staleness clock kept running: the limit still withdraws the source,
  // and partial answers do not bring it back.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  catalog.ExpireStale({{"reg", std::chrono::milliseconds(1)}});
  EXPECT_FALSE(catalog.Current()->services.contains("a"));
  catalog.Update("reg", {{"a", Service{{}, {At("10.0.0.3", 80, "reg")}}}},
                 Catalog::Freshness::kPartial);
  EXPECT_FALSE(catalog.Current()->services.contains("a"));
}

TEST(Catalog, ReadinessRules) {
  Catalog catalog({"a", "b"});
  EXPECT_FALSE(catalog.AllAttempted());
  catalog.ReportError("a", "down");
  catalog.Update("b", {});
  EXPECT_TRUE(catalog.AllAttempted());
  EXPECT_FALSE(catalog.AllSynced());
  EXPECT_EQ(catalog.Sources().at("a").state, SourceStatus::State::kStarting);
}

}  // namespace
}  // namespace attache
