#include "translate/translate.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <set>

#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "translate/resilience.h"

namespace attache {
namespace {

namespace cluster_v3 = envoy::config::cluster::v3;
namespace core_v3 = envoy::config::core::v3;
namespace endpoint_v3 = envoy::config::endpoint::v3;
namespace hcm_v3 =
    envoy::extensions::filters::network::http_connection_manager::v3;

void SetAds(core_v3::ConfigSource* source) {
  source->mutable_ads();
  source->set_resource_api_version(core_v3::V3);
}

core_v3::HealthStatus ToProto(Health health) {
  switch (health) {
    case Health::kHealthy:
      return core_v3::HEALTHY;
    case Health::kDraining:
      return core_v3::DRAINING;
    case Health::kUnhealthy:
      return core_v3::UNHEALTHY;
  }
  return core_v3::UNKNOWN;
}

void SetMetadata(const Endpoint& endpoint, core_v3::Metadata* metadata) {
  if (endpoint.canary) {
    // The key Envoy's load balancers and stats know canaries by.
    (*(*metadata->mutable_filter_metadata())["envoy.lb"]
          .mutable_fields())["canary"]
        .set_bool_value(true);
  }
  if (!endpoint.metadata.empty()) {
    auto& fields =
        *(*metadata->mutable_filter_metadata())["attache"].mutable_fields();
    for (const auto& [key, value] : endpoint.metadata) {
      fields[key].set_string_value(value);
    }
  }
}

uint32_t ClampWeight(uint64_t weight) {
  return static_cast<uint32_t>(std::clamp<uint64_t>(weight, 1, UINT32_MAX));
}

// 0: the client's zone, 1: its region, 2: elsewhere. Zone names are usually
// unique (us-east-1a), so a side that names no region still matches by zone:
// Envoy's --service-zone and many endpoints carry only a zone.
int Proximity(const ClientPlace& place, const Locality& locality) {
  const bool same_region = place.region.empty() || locality.region.empty() ||
                           locality.region == place.region;
  if (!place.zone.empty() && locality.zone == place.zone && same_region) {
    return 0;
  }
  if (!place.region.empty() && locality.region == place.region) {
    return 1;
  }
  return 2;
}

// Priorities by (has a healthy endpoint, proximity), compacted to 0..n: a
// zone whose endpoints are all unhealthy or draining ranks behind every
// healthy level, so clients that fail over only on an empty priority (gRPC)
// move at once, and Envoy does not depend on its overprovisioning factor.
template <typename Group>
std::vector<uint32_t> Priorities(const std::vector<Group>& groups) {
  std::set<std::pair<bool, int>> ranks;
  for (const Group& group : groups) {
    ranks.emplace(!group.healthy, group.proximity);
  }
  std::vector<uint32_t> out;
  out.reserve(groups.size());
  for (const Group& group : groups) {
    const auto at = ranks.find({!group.healthy, group.proximity});
    out.push_back(static_cast<uint32_t>(std::distance(ranks.begin(), at)));
  }
  return out;
}

// Locality weights that give the client's zone `local_percent` of the total
// and the other localities the rest, each in proportion to its endpoints'
// weights. Without a local (or a remote) locality, plain proportions.
template <typename Group>
std::vector<uint32_t> SharedWeights(const std::vector<Group>& groups,
                                    uint32_t local_percent) {
  uint64_t local = 0;
  uint64_t remote = 0;
  for (const Group& group : groups) {
    (group.proximity == 0 ? local : remote) += group.weight;
  }
  std::vector<uint32_t> out;
  out.reserve(groups.size());
  for (const Group& group : groups) {
    if (local == 0 || remote == 0) {
      out.push_back(ClampWeight(group.weight));
      continue;
    }
    const bool is_local = group.proximity == 0;
    const double share = is_local ? local_percent : 100.0 - local_percent;
    const double total = static_cast<double>(is_local ? local : remote);
    // Scaled so that shares keep two decimal places of precision.
    out.push_back(ClampWeight(static_cast<uint64_t>(std::llround(
        static_cast<double>(group.weight) / total * share * 100))));
  }
  return out;
}

}  // namespace

FailoverPolicy FailoverOf(const Service& service,
                          const ServiceDefaults& defaults) {
  return service.settings.failover.value_or(defaults.failover);
}

std::string PlaceSignature(const Service& service, const ClientPlace& place) {
  std::set<Locality> localities;
  for (const Endpoint& endpoint : service.endpoints) {
    localities.insert(endpoint.locality);
  }
  return PlaceSignature(localities, place);
}

std::string PlaceSignature(const std::set<Locality>& localities,
                           const ClientPlace& place) {
  std::string signature;
  signature.reserve(localities.size());
  for (const Locality& locality : localities) {
    signature.push_back(static_cast<char>('0' + Proximity(place, locality)));
  }
  return signature;
}

std::string ClusterName(const std::string& name_template,
                        const std::string& service) {
  std::string name = name_template;
  static constexpr std::string_view kPlaceholder = "{service}";
  for (size_t at = name.find(kPlaceholder); at != std::string::npos;
       at = name.find(kPlaceholder, at + service.size())) {
    name.replace(at, kPlaceholder.size(), service);
  }
  return name;
}

ResilienceSettings ResilienceOf(const Service& service,
                                const ServiceDefaults& defaults) {
  return Overlay(service.settings.resilience, defaults.resilience);
}

uint32_t OverprovisioningOf(const Service& service,
                            const ServiceDefaults& defaults) {
  return service.settings.resilience.overprovisioning_factor.value_or(
      *defaults.resilience.overprovisioning_factor);
}

cluster_v3::Cluster MakeCluster(const std::string& cluster_name,
                                const Service& service,
                                const ServiceDefaults& defaults,
                                Flavor flavor) {
  cluster_v3::Cluster cluster;
  cluster.set_name(cluster_name);
  cluster.set_type(cluster_v3::Cluster::EDS);
  SetAds(cluster.mutable_eds_cluster_config()->mutable_eds_config());
  SetDuration(
      service.settings.connect_timeout.value_or(defaults.connect_timeout),
      cluster.mutable_connect_timeout());
  SetLbPolicy(service.settings.lb_policy.value_or(defaults.lb_policy), flavor,
              &cluster);
  AddResilience(ResilienceOf(service, defaults), flavor, &cluster);
  if (FailoverOf(service, defaults) == FailoverPolicy::kWeighted) {
    // Envoy ignores locality weights unless told to use them.
    cluster.mutable_common_lb_config()->mutable_locality_weighted_lb_config();
  }
  return cluster;
}

endpoint_v3::ClusterLoadAssignment MakeLoadAssignment(
    const std::string& cluster_name, const Service& service,
    FailoverPolicy policy, const ClientPlace& place, uint32_t local_percent,
    uint32_t overprovisioning_factor) {
  // One LocalityLbEndpoints per locality, in locality order, endpoints by
  // address and port, so equal catalogs give equal bytes.
  std::map<Locality,
           std::map<std::pair<std::string, uint32_t>, const Endpoint*>>
      by_locality;
  for (const Endpoint& endpoint : service.endpoints) {
    by_locality[endpoint.locality][{endpoint.address, endpoint.port}] =
        &endpoint;
  }
  struct Group {
    const Locality* locality;
    uint64_t weight = 0;
    bool healthy = false;
    int proximity = 0;
  };
  std::vector<Group> groups;
  for (const auto& [locality, endpoints] : by_locality) {
    Group group{&locality};
    for (const auto& [key, endpoint] : endpoints) {
      group.weight += endpoint->weight;
      group.healthy = group.healthy || endpoint->health == Health::kHealthy;
    }
    group.proximity = Proximity(place, locality);
    groups.push_back(group);
  }
  const std::vector<uint32_t> priorities =
      policy == FailoverPolicy::kZoneFailover ? Priorities(groups)
                                              : std::vector<uint32_t>();
  const std::vector<uint32_t> weights =
      policy == FailoverPolicy::kWeighted ? SharedWeights(groups, local_percent)
                                          : std::vector<uint32_t>();

  endpoint_v3::ClusterLoadAssignment assignment;
  assignment.set_cluster_name(cluster_name);
  if (overprovisioning_factor != kEnvoyOverprovisioningFactor) {
    assignment.mutable_policy()->mutable_overprovisioning_factor()->set_value(
        overprovisioning_factor);
  }
  size_t index = 0;
  for (const auto& [locality, endpoints] : by_locality) {
    auto* group = assignment.add_endpoints();
    // Always present, even when empty: gRPC clients reject a missing one.
    auto* where = group->mutable_locality();
    where->set_region(locality.region);
    where->set_zone(locality.zone);
    where->set_sub_zone(locality.sub_zone);
    for (const auto& [key, endpoint] : endpoints) {
      auto* lb_endpoint = group->add_lb_endpoints();
      auto* socket = lb_endpoint->mutable_endpoint()
                         ->mutable_address()
                         ->mutable_socket_address();
      socket->set_address(endpoint->address);
      socket->set_port_value(endpoint->port);
      lb_endpoint->set_health_status(ToProto(endpoint->health));
      if (endpoint->canary || !endpoint->metadata.empty()) {
        SetMetadata(*endpoint, lb_endpoint->mutable_metadata());
      }
      lb_endpoint->mutable_load_balancing_weight()->set_value(endpoint->weight);
    }
    // gRPC clients drop localities without a positive weight.
    group->mutable_load_balancing_weight()->set_value(
        weights.empty() ? ClampWeight(groups[index].weight) : weights[index]);
    if (!priorities.empty()) {
      group->set_priority(priorities[index]);
    }
    ++index;
  }
  return assignment;
}

envoy::config::listener::v3::Listener MakeApiListener(
    const std::string& service) {
  hcm_v3::HttpConnectionManager manager;
  manager.set_stat_prefix(service);
  auto* rds = manager.mutable_rds();
  SetAds(rds->mutable_config_source());
  rds->set_route_config_name(service);
  auto* router = manager.add_http_filters();
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(
      envoy::extensions::filters::http::router::v3::Router());

  envoy::config::listener::v3::Listener listener;
  listener.set_name(service);
  listener.mutable_api_listener()->mutable_api_listener()->PackFrom(manager);
  return listener;
}

envoy::config::route::v3::RouteConfiguration MakeRouteConfiguration(
    const std::string& service, const std::string& cluster_name,
    const RetrySettings& retry) {
  envoy::config::route::v3::RouteConfiguration config;
  config.set_name(service);
  auto* host = config.add_virtual_hosts();
  host->set_name(service);
  host->add_domains("*");
  auto* route = host->add_routes();
  route->mutable_match()->set_prefix("/");
  route->mutable_route()->set_cluster(cluster_name);
  envoy::config::route::v3::RetryPolicy policy;
  if (retry.num_retries && MakeRetryPolicy(retry, &policy)) {
    *route->mutable_route()->mutable_retry_policy() = std::move(policy);
  }
  return config;
}

namespace {

// Services by cluster name, the order every resource list is emitted in.
std::map<std::string, const Service*> ByClusterName(
    const CatalogSnapshot& catalog, const TranslateOptions& options) {
  std::map<std::string, const Service*> out;
  for (const auto& entry : catalog.services) {
    out.emplace(ClusterName(options.cluster_name_template, entry.first),
                &*entry.second);
  }
  return out;
}

}  // namespace

TranslatedResources TranslateFlavor(const CatalogSnapshot& catalog,
                                    const TranslateOptions& options,
                                    Flavor flavor) {
  TranslatedResources out;
  for (const auto& [cluster_name, service] : ByClusterName(catalog, options)) {
    out.clusters.push_back(
        MakeCluster(cluster_name, *service, options.defaults, flavor));
  }
  if (flavor == Flavor::kGrpc) {
    for (const auto& [service, shared] : catalog.services) {
      const std::string cluster_name =
          ClusterName(options.cluster_name_template, service);
      out.listeners.push_back(MakeApiListener(service));
      out.routes.push_back(MakeRouteConfiguration(
          service, cluster_name,
          ResilienceOf(*shared, options.defaults).retry_policy));
    }
  }
  return out;
}

std::vector<endpoint_v3::ClusterLoadAssignment> TranslateEndpoints(
    const CatalogSnapshot& catalog, const TranslateOptions& options,
    const ClientPlace& place, bool placed_only) {
  std::vector<endpoint_v3::ClusterLoadAssignment> out;
  for (const auto& [cluster_name, service] : ByClusterName(catalog, options)) {
    const FailoverPolicy policy = FailoverOf(*service, options.defaults);
    if (placed_only && policy == FailoverPolicy::kFlat) {
      continue;
    }
    out.push_back(MakeLoadAssignment(
        cluster_name, *service, policy, place, options.defaults.local_percent,
        OverprovisioningOf(*service, options.defaults)));
  }
  return out;
}

TranslatedResources Translate(const CatalogSnapshot& catalog,
                              const TranslateOptions& options,
                              const ViewKey& view) {
  TranslatedResources out = TranslateFlavor(catalog, options, view.flavor);
  out.endpoints = TranslateEndpoints(catalog, options, view.place, false);
  return out;
}

}  // namespace attache
