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
  const Service& echo = snapshot->services.at("echo");
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
  EXPECT_EQ(catalog.Current()->services.at("echo").endpoints.size(), 1U);
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
  EXPECT_EQ(catalog.Current()->services.at("a").endpoints[0].address,
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
