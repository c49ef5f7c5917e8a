#include "admin/admin_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "admin/dashboard_page.h"

namespace attache {
namespace {

// Debug pages echo what clients sent (node ids, NACK messages): a byte that
// is not UTF-8 becomes U+FFFD instead of an exception that fails the page.
std::string JsonBody(const nlohmann::json& json) {
  return json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

}  // namespace

AdminServer::AdminServer(Handlers handlers)
    : handlers_(std::move(handlers)),
      server_(std::make_unique<httplib::Server>()) {
  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(DashboardPage().data(), DashboardPage().size(),
                    "text/html; charset=utf-8");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server_->Get(
      "/readyz", [this](const httplib::Request&, httplib::Response& res) {
        const std::string why = handlers_.not_ready();
        res.status = why.empty() ? 200 : 503;
        res.set_content(why.empty() ? "ready\n" : "not ready: " + why + "\n",
                        "text/plain");
      });
  server_->Get("/debug/sources", [this](const httplib::Request&,
                                        httplib::Response& res) {
    res.set_content(JsonBody(handlers_.sources()), "application/json");
  });
  server_->Get("/metrics",
               [this](const httplib::Request&, httplib::Response& res) {
                 res.set_content(handlers_.metrics(),
                                 "text/plain; version=0.0.4; charset=utf-8");
               });
  server_->Get("/debug/catalog", [this](const httplib::Request&,
                                        httplib::Response& res) {
    res.set_content(JsonBody(handlers_.catalog()), "application/json");
  });
  server_->Get("/debug/clients", [this](const httplib::Request&,
                                        httplib::Response& res) {
    res.set_content(JsonBody(handlers_.clients()), "application/json");
  });
  server_->Get(
      "/debug/views", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(JsonBody(handlers_.views()), "application/json");
      });
  server_->Get("/debug/config_dump", [this](const httplib::Request& req,
                                            httplib::Response& res) {
    const nlohmann::json dump = handlers_.config_dump(req.params);
    if (dump.is_null()) {
      res.status = 404;
      res.set_content(
          "no connected client has that node id; describe a node with "
          "node_id, region, zone, user_agent and client_feature instead\n",
          "text/plain");
      return;
    }
    res.set_content(JsonBody(dump), "application/json");
  });
}

AdminServer::~AdminServer() { Stop(); }

int AdminServer::Start(const ListenAddress& address) {
  int port = address.port;
  if (port == 0) {
    port = server_->bind_to_any_port(address.host);
  } else if (!server_->bind_to_port(address.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    throw std::runtime_error("cannot listen for admin HTTP on " +
                             address.ToString());
  }
  if (address.host != "127.0.0.1" && address.host != "::1") {
    spdlog::warn(
        "admin: listening on {}, which is reachable from other hosts; "
        "the debug endpoints show the whole mesh configuration",
        address.host);
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return port;
}

void AdminServer::Stop() {
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

}  // namespace attache
