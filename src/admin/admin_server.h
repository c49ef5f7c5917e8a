#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "admin/http_server.h"
#include "config/config.h"

namespace attache {

// The admin HTTP endpoints, and /healthz and /readyz on a listener of their
// own as well (so that probes answer while the debug pages are flooded).
// Handlers read state through callbacks so that this class knows nothing of
// the rest of the program.
class AdminServer {
 public:
  struct Handlers {
    // Why /readyz fails (draining, the sources not yet synced); empty when
    // ready. Must be cheap: the health listener calls it on its own thread.
    std::function<std::string()> not_ready;
    std::function<nlohmann::json()> clients;  // /debug/clients
    std::function<nlohmann::json()> sources;  // /debug/sources
    std::function<nlohmann::json()> catalog;  // /debug/catalog
    std::function<nlohmann::json()> views;    // /debug/views
    std::function<std::string()> metrics;     // /metrics, Prometheus text
    // /debug/config_dump: what a node gets, from the query parameters; null
    // when they name no connected node and describe none.
    std::function<nlohmann::json(const HttpQuery&)> config_dump;
  };

  AdminServer(const Handlers& handlers, const AdminConfig& config);

  struct Ports {
    int admin = 0;
    int health = 0;
  };
  // Binds both listeners and serves; returns the bound ports. Throws on
  // failure.
  Ports Start();
  void Stop();

 private:
  AdminConfig config_;
  std::unique_ptr<HttpServer> admin_;
  std::unique_ptr<HttpServer> health_;
};

}  // namespace attache
