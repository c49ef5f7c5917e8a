#pragma once

#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "config/config.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "translate/view.h"

namespace attache {

struct TranslateOptions {
  ServiceDefaults defaults;
  std::string cluster_name_template = "{service}";
};

// Everything one view receives, in name order within each type.
struct TranslatedResources {
  std::vector<envoy::config::cluster::v3::Cluster> clusters;
  std::vector<envoy::config::endpoint::v3::ClusterLoadAssignment> endpoints;
  std::vector<envoy::config::listener::v3::Listener> listeners;
  std::vector<envoy::config::route::v3::RouteConfiguration> routes;
};

// Pure: the same catalog, options and flavor always give equal output.
TranslatedResources Translate(const CatalogSnapshot& catalog,
                              const TranslateOptions& options, Flavor flavor);

std::string ClusterName(const std::string& name_template,
                        const std::string& service);

envoy::config::cluster::v3::Cluster MakeCluster(
    const std::string& cluster_name, const Service& service,
    const ServiceDefaults& defaults);
envoy::config::endpoint::v3::ClusterLoadAssignment MakeLoadAssignment(
    const std::string& cluster_name, const Service& service);
envoy::config::listener::v3::Listener MakeApiListener(
    const std::string& service);
envoy::config::route::v3::RouteConfiguration MakeRouteConfiguration(
    const std::string& service, const std::string& cluster_name);

}  // namespace attache
