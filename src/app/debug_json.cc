#include "app/debug_json.h"

#include <chrono>
#include <string>

#include "util/time_format.h"

namespace attache {

nlohmann::json SourcesJson(const Catalog& catalog) {
  nlohmann::json sources = nlohmann::json::array();
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [name, status] : catalog.Sources()) {
    nlohmann::json entry = {
        {"name", name},
        {"state", SourceStateName(status.state)},
        {"synced_once", status.synced_once},
        {"updates", status.updates},
        {"errors", status.errors},
        {"last_error", status.last_error},
        {"expired", status.expired},
        {"last_sync", status.synced_once ? FormatUtc(status.last_sync) : ""},
    };
    if (status.state == SourceStatus::State::kStale) {
      entry["stale_seconds"] =
          std::chrono::duration<double>(now - status.stale_since).count();
    }
    sources.push_back(std::move(entry));
  }
  return sources;
}

nlohmann::json CatalogJson(const CatalogSnapshot& catalog,
                           const std::vector<std::string>& source_names) {
  nlohmann::json services = nlohmann::json::object();
  for (const auto& [name, service] : catalog.services) {
    nlohmann::json by_source = nlohmann::json::object();
    for (const Endpoint& endpoint : service->endpoints) {
      nlohmann::json& counts = by_source[endpoint.origin];
      if (counts.is_null()) {
        counts = {{"endpoints", 0},
                  {"healthy", 0},
                  {"draining", 0},
                  {"unhealthy", 0}};
      }
      counts["endpoints"] = counts["endpoints"].get<int>() + 1;
      const std::string health(HealthName(endpoint.health));
      counts[health] = counts[health].get<int>() + 1;
    }
    services[name] = {{"endpoints", service->endpoints.size()},
                      {"by_source", std::move(by_source)}};
  }
  return {{"generation", catalog.generation},
          {"sources", source_names},
          {"services", std::move(services)}};
}

}  // namespace attache
