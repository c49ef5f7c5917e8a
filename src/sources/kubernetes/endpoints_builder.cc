#include "sources/kubernetes/endpoints_builder.h"

#include <set>

#include "config/config_error.h"
#include "config/service_yaml.h"
#include "util/ip_address.h"

namespace attache {
namespace {

bool Exported(const KubeService& service,
              const KubernetesSourceConfig& config) {
  if (service.type == "ExternalName") {
    return false;
  }
  auto it = service.annotations.find(kExportAnnotation);
  const std::string value = it == service.annotations.end() ? "" : it->second;
  return config.export_annotated_only ? value == "true" : value != "false";
}

std::string PortKey(const KubeServicePort& port) {
  return port.name.empty() ? std::to_string(port.port) : port.name;
}

}  // namespace

std::vector<std::string> AddServiceEntries(
    const KubeService& service,
    const std::vector<const KubeEndpointSlice*>& matching,
    const KubernetesSourceConfig& config, const std::string& source_name,
    ServiceMap* out, std::vector<std::string>* problems) {
  std::vector<std::string> names;
  if (!Exported(service, config)) {
    return names;
  }
  std::vector<const KubeServicePort*> ports;
  for (const auto& port : service.ports) {
    if (port.protocol == "TCP" && port.port != 0) {
      ports.push_back(&port);
    }
  }
  std::optional<FailoverPolicy> failover;
  if (auto it = service.annotations.find(kFailoverAnnotation);
      it != service.annotations.end()) {
    failover = ParseFailoverPolicy(it->second);
  }
  ResilienceSettings resilience;
  if (auto it = service.annotations.find(kResilienceAnnotation);
      it != service.annotations.end()) {
    const std::string where = "Service " + service.ns + "/" + service.name +
                              ": annotation " + kResilienceAnnotation;
    try {
      resilience = ParseResilienceText(it->second, where);
    } catch (const ConfigError& error) {
      if (problems != nullptr) {
        problems->push_back(std::string(error.what()) +
                            " (ignored: the defaults apply)");
      }
    }
  }
  const std::string base = service.name + "." + service.ns;
  for (const KubeServicePort* port : ports) {
    const std::string name =
        ports.size() == 1 ? base : base + ":" + PortKey(*port);
    Service entry;
    if (auto it = out->find(name); it != out->end()) {
      entry = *it->second;
    }
    names.push_back(name);
    entry.settings.failover = failover;
    entry.settings.resilience = resilience;
    std::set<std::pair<std::string, uint32_t>> seen;
    for (const KubeEndpointSlice* slice : matching) {
      // The slice port for this service port carries the same name.
      std::optional<uint32_t> target;
      for (const auto& slice_port : slice->ports) {
        if (slice_port.name == port->name && slice_port.protocol == "TCP") {
          target = slice_port.port;
        }
      }
      if (!target) {
        continue;
      }
      for (const KubeSliceEndpoint& kube : slice->endpoints) {
        if (kube.addresses.empty() || !IsIpLiteral(kube.addresses[0])) {
          continue;
        }
        // A missing condition means "ready" (the API's documented default).
        const bool ready = kube.ready.value_or(true);
        const bool serving = kube.serving.value_or(ready);
        const bool terminating = kube.terminating.value_or(false);
        Endpoint endpoint;
        if (ready) {
          endpoint.health = Health::kHealthy;
        } else if (serving && terminating) {
          endpoint.health = Health::kDraining;
        } else if (config.not_ready_unhealthy) {
          endpoint.health = Health::kUnhealthy;
        } else {
          continue;
        }
        endpoint.address = kube.addresses[0];
        endpoint.port = *target;
        if (!seen.emplace(endpoint.address, endpoint.port).second) {
          continue;
        }
        endpoint.locality.region = config.locality.region;
        endpoint.locality.zone =
            kube.zone.empty() ? config.locality.zone : kube.zone;
        endpoint.locality.sub_zone = config.locality.sub_zone.empty()
                                         ? source_name
                                         : config.locality.sub_zone;
        if (!kube.node_name.empty()) {
          endpoint.metadata["node"] = kube.node_name;
        }
        endpoint.metadata["cluster"] = source_name;
        endpoint.origin = source_name;
        entry.endpoints.push_back(std::move(endpoint));
      }
    }
    out->insert_or_assign(name, std::move(entry));
  }
  return names;
}

bool UsableSlice(const KubeEndpointSlice& slice) {
  return !slice.service_name.empty() &&
         (slice.address_type == "IPv4" || slice.address_type == "IPv6");
}

ServiceMap BuildServiceMap(const std::vector<const KubeService*>& services,
                           const std::vector<const KubeEndpointSlice*>& slices,
                           const KubernetesSourceConfig& config,
                           const std::string& source_name) {
  // Slices by (namespace, service name).
  std::map<std::pair<std::string, std::string>,
           std::vector<const KubeEndpointSlice*>>
      slices_of;
  for (const KubeEndpointSlice* slice : slices) {
    if (UsableSlice(*slice)) {
      slices_of[{slice->ns, slice->service_name}].push_back(slice);
    }
  }
  ServiceMap out;
  for (const KubeService* service : services) {
    AddServiceEntries(*service, slices_of[{service->ns, service->name}], config,
                      source_name, &out);
  }
  return out;
}

}  // namespace attache
