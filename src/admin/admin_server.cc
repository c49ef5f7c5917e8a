#include "admin/admin_server.h"

#include <spdlog/spdlog.h>

#include "admin/dashboard_page.h"

namespace attache {
namespace {

constexpr const char* kJson = "application/json";

// Debug pages echo what clients sent (node ids, NACK messages): a byte that
// is not UTF-8 becomes U+FFFD instead of an exception that fails the page.
HttpResponse JsonResponse(const nlohmann::json& json) {
  return {200, kJson,
          json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
              "\n"};
}

std::map<std::string, HttpRoute> HealthRoutes(
    std::function<std::string()> not_ready) {
  return {
      {"/healthz",
       [](const HttpQuery&) { return HttpResponse{.body = "ok\n"}; }},
      {"/readyz",
       [not_ready = std::move(not_ready)](const HttpQuery&) {
         const std::string why = not_ready();
         return why.empty() ? HttpResponse{.body = "ready\n"}
                            : HttpResponse{.status = 503,
                                           .body = "not ready: " + why + "\n"};
       }},
  };
}

std::map<std::string, HttpRoute> AdminRoutes(const AdminServer::Handlers& h) {
  auto routes = HealthRoutes(h.not_ready);
  routes["/"] = [](const HttpQuery&) {
    return HttpResponse{200, "text/html; charset=utf-8",
                        std::string(DashboardPage())};
  };
  routes["/metrics"] = [metrics = h.metrics](const HttpQuery&) {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                        metrics()};
  };
  const std::pair<const char*, std::function<nlohmann::json()>> pages[] = {
      {"/debug/sources", h.sources},
      {"/debug/catalog", h.catalog},
      {"/debug/clients", h.clients},
      {"/debug/views", h.views}};
  for (const auto& [path, page] : pages) {
    routes[path] = [page = page](const HttpQuery&) {
      return JsonResponse(page());
    };
  }
  routes["/debug/config_dump"] = [dump_of =
                                      h.config_dump](const HttpQuery& query) {
    const nlohmann::json dump = dump_of(query);
    if (dump.is_null()) {
      return HttpResponse{
          .status = 404,
          .body =
              "no connected client has that node id; describe a node "
              "with node_id, region, zone, user_agent and "
              "client_feature instead\n"};
    }
    return JsonResponse(dump);
  };
  return routes;
}

HttpLimits LimitsOf(const AdminConfig& config, unsigned threads) {
  return HttpLimits{
      .max_connections = config.max_connections,
      .max_connections_per_peer = config.max_connections_per_peer,
      .idle_timeout = config.idle_timeout,
      .max_request_header_bytes = config.max_request_header_bytes,
      .threads = threads,
  };
}

}  // namespace

AdminServer::AdminServer(const Handlers& handlers, const AdminConfig& config)
    : config_(config),
      // Two event loops: a slow debug page holds up only the connections
      // of its own loop.
      admin_(std::make_unique<HttpServer>("admin", AdminRoutes(handlers),
                                          LimitsOf(config, 2))),
      health_(std::make_unique<HttpServer>(
          "health", HealthRoutes(handlers.not_ready), LimitsOf(config, 1))) {}

AdminServer::Ports AdminServer::Start() {
  Ports ports;
  ports.admin = admin_->Start(config_.listen);
  const std::string& host = config_.listen.host;
  if (host != "127.0.0.1" && host != "::1") {
    spdlog::warn(
        "admin: listening on {}, which is reachable from other hosts; "
        "the debug endpoints show the whole mesh configuration",
        host);
  }
  ports.health = health_->Start(config_.HealthListen());
  return ports;
}

void AdminServer::Stop() {
  admin_->Stop();
  health_->Stop();
}

}  // namespace attache
