#include "app/status_metrics.h"

#include <chrono>
#include <map>
#include <string>

#include "metrics/registry.h"

namespace attache {

std::vector<prometheus::MetricFamily> StatusMetrics(
    const Catalog& catalog, const StreamRegistry& registry,
    const TlsCredentials* tls) {
  auto up = GaugeFamily(
      "attache_source_up",
      "1 when the source's last attempt reached its origin, else 0.");
  auto last_sync = GaugeFamily(
      "attache_source_last_sync_timestamp_seconds",
      "When the source last delivered a complete state (unix time; 0: never).");
  auto staleness = GaugeFamily(
      "attache_source_staleness_seconds",
      "How long the source has been failing while its last good state "
      "serves (0 when synced).");
  auto updates = CounterFamily(
      "attache_source_updates_total",
      "States the source delivered (list, watch events, reloads, polls).");
  auto errors = CounterFamily("attache_source_errors_total",
                              "Failures the source reported.");
  auto rejected = CounterFamily(
      "attache_source_rejected_settings_total",
      "Settings in a source's data that were ignored (for example a "
      "Kubernetes annotation that does not parse).");
  auto endpoints = GaugeFamily("attache_catalog_endpoints",
                               "Endpoints in the catalog, by source.");
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, double> endpoints_of;
  for (const auto& [name, status] : catalog.Sources()) {
    const std::vector<prometheus::ClientMetric::Label> labels = {
        {"source", name}};
    const bool synced = status.state == SourceStatus::State::kSynced;
    AddSample(&up, labels, synced ? 1 : 0);
    AddSample(&last_sync, labels,
              status.synced_once ? std::chrono::duration<double>(
                                       status.last_sync.time_since_epoch())
                                       .count()
                                 : 0);
    AddSample(
        &staleness, labels,
        status.state == SourceStatus::State::kStale
            ? std::chrono::duration<double>(now - status.stale_since).count()
            : 0);
    AddSample(&updates, labels, static_cast<double>(status.updates));
    AddSample(&errors, labels, static_cast<double>(status.errors));
    AddSample(&rejected, labels, static_cast<double>(status.rejected));
    endpoints_of[name] = 0;
  }
  const auto current = catalog.Current();
  for (const auto& [name, service] : current->services) {
    for (const Endpoint& endpoint : service->endpoints) {
      endpoints_of[endpoint.origin] += 1;
    }
  }
  for (const auto& [source, count] : endpoints_of) {
    AddSample(&endpoints, {{"source", source}}, count);
  }
  auto services = GaugeFamily("attache_catalog_services",
                              "Services in the merged catalog.");
  AddSample(&services, {}, static_cast<double>(current->services.size()));
  auto generation =
      GaugeFamily("attache_catalog_generation",
                  "Generation of the merged catalog; grows with every change.");
  AddSample(&generation, {}, static_cast<double>(current->generation));

  auto clients = GaugeFamily("attache_xds_connected_clients",
                             "xDS streams with a known node, by protocol.");
  for (const auto& [protocol, count] : registry.CountByProtocol()) {
    AddSample(&clients, {{"protocol", protocol}}, static_cast<double>(count));
  }
  // Views follow what clients claim; endpoint maps follow the catalog's
  // localities (clients whose places rank every locality alike share one).
  auto views = GaugeFamily(
      "attache_xds_views",
      "Views (flavor and place) built for the newest catalog generation.");
  auto endpoint_maps =
      GaugeFamily("attache_xds_endpoint_maps",
                  "Distinct load-assignment maps those views hold.");
  if (const SnapshotSetPtr snapshots = registry.Current()) {
    AddSample(&views, {}, static_cast<double>(snapshots->BuiltViews().size()));
    AddSample(&endpoint_maps, {},
              static_cast<double>(snapshots->EndpointMapCount()));
  }
  std::vector<prometheus::MetricFamily> out;
  for (auto* family :
       {&up, &last_sync, &staleness, &updates, &errors, &rejected, &endpoints,
        &services, &generation, &clients, &views, &endpoint_maps}) {
    out.push_back(std::move(*family));
  }
  if (tls != nullptr) {
    const TlsCredentials::Status status = tls->status();
    auto expiry = GaugeFamily(
        "attache_xds_tls_certificate_expiry_timestamp_seconds",
        "When the certificate served on the xDS port expires (unix time).");
    AddSample(&expiry, {},
              std::chrono::duration<double>(status.not_after.time_since_epoch())
                  .count());
    auto refused = CounterFamily(
        "attache_xds_tls_refused_reloads_total",
        "Rotations of the xds.tls files refused as unusable (each distinct "
        "problem once); the last good certificate keeps serving.");
    AddSample(&refused, {}, static_cast<double>(status.refused));
    auto refused_clients = CounterFamily(
        "attache_xds_tls_refused_clients_total",
        "Client certificates signed by the client CA but refused because "
        "none of their names is in xds.tls.client_names.");
    AddSample(&refused_clients, {},
              static_cast<double>(status.refused_clients));
    out.push_back(std::move(expiry));
    out.push_back(std::move(refused));
    out.push_back(std::move(refused_clients));
  }
  return out;
}

}  // namespace attache
