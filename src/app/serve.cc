#include "app/serve.h"

#include <absl/synchronization/mutex.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "admin/admin_server.h"
#include "app/debug_json.h"
#include "app/dump.h"
#include "app/pipeline.h"
#include "app/sources.h"
#include "app/status_metrics.h"
#include "catalog/stale_expiry.h"
#include "config/config_error.h"
#include "metrics/process_metrics.h"
#include "metrics/registry.h"
#include "util/time_format.h"
#include "xds/server/xds_server.h"

namespace attache {
namespace {

// How long streams may stay open after SIGTERM before they are ended. xDS
// streams never end by themselves, so this is only a bound for a response
// already being written; well inside Kubernetes' 30 s termination grace.
constexpr std::chrono::milliseconds kDrainGrace{1000};

// What a node receives: a connected one by `node`, or one described by
// node_id, region, zone, user_agent and client_feature (as `attache dump`).
nlohmann::json ConfigDump(
    const StreamRegistry& registry,
    const std::multimap<std::string, std::string>& params) {
  envoy::config::core::v3::Node node;
  if (auto it = params.find("node"); it != params.end()) {
    auto connected = registry.NodeOf(it->second);
    if (!connected) {
      return nullptr;
    }
    node = std::move(*connected);
  } else {
    bool described = false;
    for (const auto& [key, value] : params) {
      described = true;
      if (key == "node_id") {
        node.set_id(value);
      } else if (key == "region") {
        node.mutable_locality()->set_region(value);
      } else if (key == "zone") {
        node.mutable_locality()->set_zone(value);
      } else if (key == "user_agent") {
        node.set_user_agent_name(value);
      } else if (key == "client_feature") {
        node.add_client_features(value);
      }
    }
    if (!described) {
      return nullptr;
    }
  }
  return DumpForNode(*registry.Current(), node);
}

void WritePortsFile(const std::filesystem::path& file, int xds,
                    AdminServer::Ports admin) {
  const auto tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << nlohmann::json{{"xds", xds},
                          {"admin", admin.admin},
                          {"health", admin.health}}
               .dump()
        << "\n";
  }
  std::filesystem::rename(tmp, file);
}

// The sources /readyz waits for, named, or empty when there are none.
std::string NotReadySources(const Catalog& catalog, bool require_synced) {
  const std::vector<std::string> waiting =
      catalog.NotYet(require_synced ? Catalog::Readiness::kSynced
                                    : Catalog::Readiness::kAttempted);
  if (waiting.empty()) {
    return "";
  }
  return fmt::format(
      "{}: {}", require_synced ? "not synced yet" : "first attempt not done",
      fmt::join(waiting, ", "));
}

}  // namespace

int Serve(const Config& config, const ServeOptions& options) {
  // Signals are taken by sigwait below, never by a worker thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // Debian builds abseil with deadlock detection on, which records every
  // lock order gRPC takes: measurable CPU on every call, with thousands of
  // streams. It is a debugging aid; the sanitizer builds cover us.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  Catalog catalog(SourceNames(config));
  auto sources = MakeSources(config, &catalog);
  for (auto& source : sources) {
    source->LoadInitial();  // a bad source at start-up is a config error
  }
  Pipeline pipeline(&catalog, TranslateOptionsOf(config), config.debounce,
                    config.max_delay);
  XdsServer xds(pipeline.BuildNow(), config.xds_ttl);
  catalog.SetChangeListener([&pipeline] { pipeline.Notify(); });
  pipeline.Start([&xds](const SnapshotSetPtr& snapshots) {
    xds.registry().Publish(snapshots);
  });
  for (auto& source : sources) {
    source->Start();
  }

  const int xds_port = xds.Start(config.xds_listen.ToString(), config.xds_tls);
  const bool require_synced = config.ready_requires_all_synced;
  // Set on SIGTERM: a replica that is going away must not be sent new
  // clients, even while its admin API still answers.
  std::atomic<bool> draining{false};
  AdminServer admin(
      AdminServer::Handlers{
          .not_ready =
              [&catalog, &draining, require_synced] {
                return draining ? std::string("draining (shutting down)")
                                : NotReadySources(catalog, require_synced);
              },
          .clients = [&xds] { return xds.registry().ClientsJson(); },
          .sources = [&catalog] { return SourcesJson(catalog); },
          .catalog =
              [&catalog, names = SourceNames(config)] {
                return CatalogJson(*catalog.Current(), names);
              },
          .views = [&xds] { return xds.registry().ViewsJson(); },
          .metrics =
              [&catalog, &xds] {
                auto extra = StatusMetrics(catalog, xds.registry(), xds.tls());
                for (auto& family : ProcessMetrics()) {
                  extra.push_back(std::move(family));
                }
                return MetricsText(std::move(extra));
              },
          .config_dump =
              [&xds](const HttpQuery& params) {
                return ConfigDump(xds.registry(), params);
              },
      },
      config.admin);
  const AdminServer::Ports admin_ports = admin.Start();
  spdlog::info(
      "attache {} serving xDS on {}:{}, admin on http://{}:{}, probes on "
      "http://{}:{}",
      ATTACHE_VERSION, config.xds_listen.host, xds_port,
      config.admin.listen.host, admin_ports.admin,
      config.admin.HealthListen().host, admin_ports.health);
  if (!options.ports_file.empty()) {
    WritePortsFile(options.ports_file, xds_port, admin_ports);
  }

  std::map<std::string, std::chrono::milliseconds> max_staleness;
  for (const SourceConfig& source : config.sources) {
    max_staleness[source.name] = source.max_staleness;
  }
  StaleExpiry expiry(&catalog, std::move(max_staleness));
  int signal_number = -1;
  while (signal_number < 0) {
    signal_number = sigwaitinfo(&signals, nullptr);
  }
  const auto drain_started = std::chrono::steady_clock::now();
  draining = true;
  spdlog::info(
      "received {}, shutting down: draining: /readyz fails, new xDS "
      "connections are refused, the {} xDS stream(s) end with "
      "UNAVAILABLE within {} ms",
      signal_number == SIGINT ? "SIGINT" : "SIGTERM", xds.registry().size(),
      kDrainGrace.count());
  // xDS first: its port closes at once and clients move to another replica
  // however long a source takes to stop (a hung API server, say). Sources
  // and the pipeline keep streams up to date during the grace.
  xds.Shutdown(kDrainGrace);
  for (auto& source : sources) {
    source->Stop();
  }
  pipeline.Stop();
  admin.Stop();
  spdlog::info("drained in {} ms, exiting",
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - drain_started)
                   .count());
  return 0;
}

}  // namespace attache
