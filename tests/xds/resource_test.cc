#include "xds/cache/resource.h"

#include <gtest/gtest.h>

#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"

namespace attache {
namespace {

using envoy::config::listener::v3::Listener;
using envoy::config::route::v3::RouteConfiguration;
using envoy::extensions::filters::network::http_connection_manager::v3::
    HttpConnectionManager;

// Two virtual hosts: one route to a cluster, one split over weighted
// clusters (naming one twice), and a route without an action.
RouteConfiguration Routes() {
  RouteConfiguration config;
  config.set_name("r");
  auto* first = config.add_virtual_hosts();
  first->add_domains("*");
  first->add_routes()->mutable_route()->set_cluster("zeta");
  first->add_routes()->mutable_match()->set_prefix("/none");
  auto* second = config.add_virtual_hosts();
  auto* split =
      second->add_routes()->mutable_route()->mutable_weighted_clusters();
  for (const char* name : {"beta", "alpha", "zeta"}) {
    auto* weighted = split->add_clusters();
    weighted->set_name(name);
    weighted->mutable_weight()->set_value(1);
  }
  return config;
}

TEST(ReferencedClusters, RouteNamesClusterAndWeightedClustersSortedOnce) {
  EXPECT_EQ(ReferencedClusters(ResourceType::kRoute, Routes()),
            (std::vector<std::string>{"alpha", "beta", "zeta"}));
  EXPECT_EQ(MakeResource(ResourceType::kRoute, "r", Routes())->clusters,
            (std::vector<std::string>{"alpha", "beta", "zeta"}));
}

TEST(ReferencedClusters, ListenerOnRdsNamesNoneInlineRoutesTheirClusters) {
  HttpConnectionManager on_rds;
  on_rds.mutable_rds()->set_route_config_name("r");
  Listener api;
  api.set_name("l");
  api.mutable_api_listener()->mutable_api_listener()->PackFrom(on_rds);
  EXPECT_TRUE(ReferencedClusters(ResourceType::kListener, api).empty());

  HttpConnectionManager inline_routes;
  *inline_routes.mutable_route_config() = Routes();
  api.mutable_api_listener()->mutable_api_listener()->PackFrom(inline_routes);
  EXPECT_EQ(ReferencedClusters(ResourceType::kListener, api),
            (std::vector<std::string>{"alpha", "beta", "zeta"}));

  // A socket listener's filter chain, as Envoy takes them.
  Listener socket;
  socket.set_name("s");
  auto* filter = socket.add_filter_chains()->add_filters();
  filter->set_name("envoy.filters.network.http_connection_manager");
  filter->mutable_typed_config()->PackFrom(inline_routes);
  EXPECT_EQ(MakeResource(ResourceType::kListener, "s", socket)->clusters,
            (std::vector<std::string>{"alpha", "beta", "zeta"}));
}

TEST(ReferencedClusters, OtherTypesNameNone) {
  EXPECT_TRUE(ReferencedClusters(ResourceType::kCluster, Routes()).empty());
}

}  // namespace
}  // namespace attache
