#include "app/serve.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "admin/admin_server.h"
#include "app/pipeline.h"
#include "app/sources.h"
#include "config/config_error.h"
#include "util/time_format.h"
#include "xds/server/xds_server.h"

namespace attache {
namespace {

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

void WritePortsFile(const std::filesystem::path& file, int xds, int admin) {
  const auto tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << nlohmann::json{{"xds", xds}, {"admin", admin}}.dump() << "\n";
  }
  std::filesystem::rename(tmp, file);
}

}  // namespace

int Serve(const Config& config, const ServeOptions& options) {
  // Signals are taken by sigwait below, never by a worker thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Catalog catalog(SourceNames(config));
  auto sources = MakeSources(config, &catalog);
  for (auto& source : sources) {
    source->LoadInitial();  // a bad source at start-up is a config error
  }
  Pipeline pipeline(&catalog, TranslateOptionsOf(config), config.debounce,
                    config.max_delay);
  XdsServer xds(pipeline.BuildNow());
  catalog.SetChangeListener([&pipeline] { pipeline.Notify(); });
  pipeline.Start([&xds](const SnapshotSetPtr& snapshots) {
    xds.registry().Publish(snapshots);
  });
  for (auto& source : sources) {
    source->Start();
  }

  const int xds_port = xds.Start(config.xds_listen.ToString());
  const bool require_synced = config.ready_requires_all_synced;
  AdminServer admin(AdminServer::Handlers{
      .ready =
          [&catalog, require_synced] {
            return require_synced ? catalog.AllSynced()
                                  : catalog.AllAttempted();
          },
      .clients = [&xds] { return xds.registry().ClientsJson(); },
      .sources = [&catalog] { return SourcesJson(catalog); },
  });
  const int admin_port = admin.Start(config.admin_listen);
  spdlog::info("attache {} serving xDS on {}:{}, admin on http://{}:{}",
               ATTACHE_VERSION, config.xds_listen.host, xds_port,
               config.admin_listen.host, admin_port);
  if (!options.ports_file.empty()) {
    WritePortsFile(options.ports_file, xds_port, admin_port);
  }

  std::map<std::string, std::chrono::milliseconds> max_staleness;
  for (const SourceConfig& source : config.sources) {
    max_staleness[source.name] = source.max_staleness;
  }
  int signal_number = -1;
  const timespec tick{1, 0};
  while (signal_number < 0) {
    // Wakes every second to withdraw endpoints stale past their limit.
    signal_number = sigtimedwait(&signals, nullptr, &tick);
    catalog.ExpireStale(max_staleness);
  }
  spdlog::info("received {}, shutting down",
               signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  for (auto& source : sources) {
    source->Stop();
  }
  pipeline.Stop();
  admin.Stop();
  // Give streams a moment to end cleanly so clients reconnect elsewhere.
  xds.Shutdown(std::chrono::milliseconds(1000));
  return 0;
}

}  // namespace attache
