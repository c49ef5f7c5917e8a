#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "config/config.h"

namespace httplib {
class Server;
}

namespace attache {

// The admin HTTP endpoints. Handlers read state through callbacks so that
// this class knows nothing of the rest of the program.
class AdminServer {
 public:
  struct Handlers {
    // Why /readyz fails (draining, the sources not yet synced); empty when
    // ready.
    std::function<std::string()> not_ready;
    std::function<nlohmann::json()> clients;  // /debug/clients
    std::function<nlohmann::json()> sources;  // /debug/sources
    std::function<nlohmann::json()> catalog;  // /debug/catalog
    std::function<nlohmann::json()> views;    // /debug/views
    std::function<std::string()> metrics;     // /metrics, Prometheus text
    // /debug/config_dump: what a node gets, from the query parameters; null
    // when they name no connected node and describe none.
    std::function<nlohmann::json(
        const std::multimap<std::string, std::string>&)>
        config_dump;
  };

  explicit AdminServer(Handlers handlers);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and serves in a thread; returns the bound port. Throws on failure.
  int Start(const ListenAddress& address);
  void Stop();

 private:
  Handlers handlers_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace attache
