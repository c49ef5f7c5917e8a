#include "app/debug_json.h"

#include <gtest/gtest.h>

namespace attache {
namespace {

Endpoint At(const std::string& origin, Health health) {
  Endpoint endpoint;
  endpoint.address = "10.0.0.1";
  endpoint.port = 80;
  endpoint.origin = origin;
  endpoint.health = health;
  return endpoint;
}

TEST(CatalogJson, CountsEndpointsPerServiceSourceAndHealth) {
  CatalogSnapshot catalog;
  catalog.generation = 7;
  catalog.services["echo"] = Service{
      .settings = {},
      .endpoints = {At("east", Health::kHealthy), At("east", Health::kDraining),
                    At("west", Health::kUnhealthy)}};
  catalog.services["empty"] = Service{};
  const nlohmann::json json = CatalogJson(catalog, {"east", "west"});
  EXPECT_EQ(json["generation"], 7);
  EXPECT_EQ(json["sources"], nlohmann::json({"east", "west"}));
  const nlohmann::json& echo = json["services"]["echo"];
  EXPECT_EQ(echo["endpoints"], 3);
  EXPECT_EQ(echo["by_source"]["east"]["endpoints"], 2);
  EXPECT_EQ(echo["by_source"]["east"]["healthy"], 1);
  EXPECT_EQ(echo["by_source"]["east"]["draining"], 1);
  EXPECT_EQ(echo["by_source"]["west"]["unhealthy"], 1);
  EXPECT_EQ(echo["by_source"]["west"]["healthy"], 0);
  EXPECT_EQ(json["services"]["empty"]["endpoints"], 0);
  EXPECT_TRUE(json["services"]["empty"]["by_source"].empty());
}

}  // namespace
}  // namespace attache
