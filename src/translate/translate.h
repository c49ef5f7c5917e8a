#pragma once

#include <set>
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

// Envoy's own overprovisioning factor (percent): not sent when unchanged.
inline constexpr uint32_t kEnvoyOverprovisioningFactor = 140;

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

// Pure: the same catalog, options and view always give equal output.
TranslatedResources Translate(const CatalogSnapshot& catalog,
                              const TranslateOptions& options,
                              const ViewKey& view);

// What depends on the flavor only: clusters, listeners and routes.
TranslatedResources TranslateFlavor(const CatalogSnapshot& catalog,
                                    const TranslateOptions& options,
                                    Flavor flavor);

// The load assignments as seen from `place`. With `placed_only`, only those
// of services whose failover policy depends on where the client is; the
// others are the same from everywhere.
std::vector<envoy::config::endpoint::v3::ClusterLoadAssignment>
TranslateEndpoints(const CatalogSnapshot& catalog,
                   const TranslateOptions& options, const ClientPlace& place,
                   bool placed_only);

FailoverPolicy FailoverOf(const Service& service,
                          const ServiceDefaults& defaults);

// How near each of the service's localities is to `place`, in locality
// order. Places with equal signatures get equal load assignments, so a view
// can reuse another place's instead of translating it again.
std::string PlaceSignature(const Service& service, const ClientPlace& place);
// The same over any set of localities (every locality of a catalog, say):
// places with equal signatures over every locality of a catalog see the
// same load assignments for all of it.
std::string PlaceSignature(const std::set<Locality>& localities,
                           const ClientPlace& place);

std::string ClusterName(const std::string& name_template,
                        const std::string& service);

// The service's resilience settings over the defaults: every field set.
ResilienceSettings ResilienceOf(const Service& service,
                                const ServiceDefaults& defaults);

// The one resilience field load assignments need, without resolving the
// rest (that runs for every place of every endpoint change).
uint32_t OverprovisioningOf(const Service& service,
                            const ServiceDefaults& defaults);

// Envoy gets outlier detection, active health checks, circuit breakers with
// a retry budget and the panic threshold; gRPC clients get what they read
// (outlier detection, gRFC A50; circuit breakers, A32) and the load
// balancing policy as a typed list (A52), so that each client takes the
// first policy it supports.
envoy::config::cluster::v3::Cluster MakeCluster(const std::string& cluster_name,
                                                const Service& service,
                                                const ServiceDefaults& defaults,
                                                Flavor flavor = Flavor::kEnvoy);
// flat: every locality at priority 0, weighted by its endpoints' weights.
// zone-failover: the client's zone at priority 0, its region at 1, the rest
// at 2; a level without a healthy endpoint goes behind the healthy ones, and
// priorities are compacted to 0..n. weighted: one priority; the client's zone
// gets `local_percent` of the locality weight, the rest share the remainder.
envoy::config::endpoint::v3::ClusterLoadAssignment MakeLoadAssignment(
    const std::string& cluster_name, const Service& service,
    FailoverPolicy policy = FailoverPolicy::kFlat,
    const ClientPlace& place = {}, uint32_t local_percent = 80,
    uint32_t overprovisioning_factor = 140);
envoy::config::listener::v3::Listener MakeApiListener(
    const std::string& service);
// With the service's retry policy (gRFC A44) unless num_retries is 0.
envoy::config::route::v3::RouteConfiguration MakeRouteConfiguration(
    const std::string& service, const std::string& cluster_name,
    const RetrySettings& retry = {});

}  // namespace attache
