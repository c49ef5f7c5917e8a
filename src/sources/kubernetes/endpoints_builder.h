#pragma once

#include <map>
#include <string>
#include <vector>

#include "catalog/model.h"
#include "config/config.h"
#include "sources/kubernetes/kube_objects.h"

namespace attache {

// Annotation on a Service: "false" keeps it out of the mesh; with
// `export: annotated`, only Services with "true" are in.
inline constexpr const char* kExportAnnotation = "attache.io/export";
// Annotation on a Service: its failover policy (flat, zone-failover or
// weighted); an unknown value is ignored and the default applies.
inline constexpr const char* kFailoverAnnotation = "attache.io/failover";
// Annotation on a Service: its resilience settings, a YAML or JSON map with
// the keys of a host-file service (outlier_detection, health_check, ...).
// A value that does not parse is ignored as a whole (the defaults apply) and
// reported in `problems`.
inline constexpr const char* kResilienceAnnotation = "attache.io/resilience";

// Pure: Services and EndpointSlices of one cluster -> catalog services.
// A Service with one port is "<name>.<namespace>"; with several, each port is
// "<name>.<namespace>:<port name or number>". Endpoints: ready -> HEALTHY,
// serving and terminating -> DRAINING, otherwise skipped (or UNHEALTHY with
// not_ready: unhealthy). Zone from the endpoint, else the configured one;
// sub_zone is the configured one, else the source name, so that each
// cluster's endpoints form localities of their own.
ServiceMap BuildServiceMap(const std::vector<const KubeService*>& services,
                           const std::vector<const KubeEndpointSlice*>& slices,
                           const KubernetesSourceConfig& config,
                           const std::string& source_name);

// The part of BuildServiceMap for one Service and the slices of its name:
// adds its catalog services to `out` and returns their names (none when it
// is not exported). Annotations it had to ignore go in `problems`.
std::vector<std::string> AddServiceEntries(
    const KubeService& service,
    const std::vector<const KubeEndpointSlice*>& matching,
    const KubernetesSourceConfig& config, const std::string& source_name,
    ServiceMap* out, std::vector<std::string>* problems = nullptr);

// A slice that can carry endpoints: it names its Service and holds IP
// addresses.
bool UsableSlice(const KubeEndpointSlice& slice);

}  // namespace attache
