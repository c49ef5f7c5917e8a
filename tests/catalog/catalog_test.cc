#include "catalog/catalog.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace attache
