#include "admin/http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "admin/connection_limiter.h"
#include "metrics/registry.h"
#include "util/budgeted_log.h"

namespace attache {
namespace {

std::string PeerAddress(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = "";
  if (address == nullptr) {
    return "";
  }
  if (address->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr,
              text, sizeof(text));
  } else if (address->sa_family == AF_INET6) {
    inet_ntop(AF_INET6,
              &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text,
              sizeof(text));
  }
  return text;
}

std::string PeerOf(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  return info == nullptr ? std::string() : PeerAddress(info->client_addr);
}

// Refused connections are logged within this budget (all listeners
// together): a flood of them is one line per window and a counter.
LogBudget& RefusalLog() {
  static auto* budget = new LogBudget(5, std::chrono::seconds(10));
  return *budget;
}

int BoundSocket(const ListenAddress& address) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const bool v6 = address.host.find(':') != std::string::npos;
  if (v6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(address.port);
    if (inet_pton(AF_INET6, address.host.c_str(), &in6->sin6_addr) != 1) {
      return -1;
    }
    length = sizeof(sockaddr_in6);
  } else {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
    in4->sin_family = AF_INET;
    in4->sin_port = htons(address.port);
    if (inet_pton(AF_INET, address.host.c_str(), &in4->sin_addr) != 1) {
      return -1;
    }
    length = sizeof(sockaddr_in);
  }
  const int fd = socket(v6 ? AF_INET6 : AF_INET,
                        SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return -1;
  }
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (v6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      listen(fd, 128) != 0) {
    const int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

int PortOf(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return -1;
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
}

MHD_Result CollectArgument(void* cls, MHD_ValueKind /*kind*/, const char* key,
                           const char* value) {
  static_cast<HttpQuery*>(cls)->emplace(key, value == nullptr ? "" : value);
  return MHD_YES;
}

}  // namespace

struct HttpServer::Impl {
  Impl(std::string listener, std::map<std::string, HttpRoute> routes_in,
       HttpLimits limits_in)
      : name(std::move(listener)),
        routes(std::move(routes_in)),
        limits(limits_in),
        limiter(limits.max_connections, limits.max_connections_per_peer) {
    auto& registry = MetricsRegistry();
    requests = &prometheus::BuildCounter()
                    .Name("attache_admin_requests_total")
                    .Help(
                        "Admin HTTP requests answered, by listener and "
                        "status code.")
                    .Register(registry);
    auto& refused =
        prometheus::BuildCounter()
            .Name("attache_admin_refused_connections_total")
            .Help(
                "Admin HTTP connections refused at a limit, by listener "
                "and limit.")
            .Register(registry);
    refused_total =
        &refused.Add({{"listener", name}, {"limit", "max_connections"}});
    refused_peer = &refused.Add(
        {{"listener", name}, {"limit", "max_connections_per_peer"}});
    open = &prometheus::BuildGauge()
                .Name("attache_admin_open_connections")
                .Help("Admin HTTP connections open, by listener.")
                .Register(registry)
                .Add({{"listener", name}});
  }

  static MHD_Result OnAccept(void* cls, const sockaddr* address,
                             socklen_t /*length*/) {
    auto* self = static_cast<Impl*>(cls);
    const std::string peer = PeerAddress(address);
    const auto verdict = self->limiter.Check(peer);
    if (verdict == ConnectionLimiter::Verdict::kAdmit) {
      return MHD_YES;
    }
    const bool per_peer =
        verdict == ConnectionLimiter::Verdict::kTooManyFromPeer;
    (per_peer ? self->refused_peer : self->refused_total)->Increment();
    LogBudgeted(RefusalLog(), spdlog::level::warn,
                "refused admin connections "
                "(see attache_admin_refused_connections_total)",
                "admin: the {} listener refused a connection from {}: {} ({}) "
                "reached",
                self->name, peer,
                per_peer ? "max_connections_per_peer" : "max_connections",
                per_peer ? self->limits.max_connections_per_peer
                         : self->limits.max_connections);
    return MHD_NO;
  }

  static void OnConnection(void* cls, MHD_Connection* connection,
                           void** /*socket_context*/,
                           MHD_ConnectionNotificationCode code) {
    auto* self = static_cast<Impl*>(cls);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
      self->limiter.Opened(PeerOf(connection));
      self->open->Increment();
    } else {
      self->limiter.Closed(PeerOf(connection));
      self->open->Decrement();
    }
  }

  HttpResponse Answer(MHD_Connection* connection, const char* url,
                      const char* method) const {
    if (std::strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        std::strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
      return {MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
              "only GET and HEAD\n"};
    }
    const char* length = MHD_lookup_connection_value(
        connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if ((length != nullptr && std::strcmp(length, "0") != 0) ||
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
            nullptr) {
      return {MHD_HTTP_CONTENT_TOO_LARGE, "text/plain; charset=utf-8",
              "a request body is not accepted\n"};
    }
    const auto route = routes.find(url);
    if (route == routes.end()) {
      return {MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", "not found\n"};
    }
    HttpQuery query;
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND,
                              &CollectArgument, &query);
    try {
      return route->second(query);
    } catch (const std::exception& error) {
      spdlog::error("admin: {} failed: {}", url, error.what());
      return {MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
              "internal error\n"};
    }
  }

  // Answers on the first call, when the headers are in: a body, if any, is
  // never read (libmicrohttpd closes such a connection after the answer).
  static MHD_Result OnRequest(void* cls, MHD_Connection* connection,
                              const char* url, const char* method,
                              const char* /*version*/,
                              const char* /*upload_data*/,
                              size_t* /*upload_data_size*/,
                              void** /*request_context*/) {
    auto* self = static_cast<Impl*>(cls);
    HttpResponse response = self->Answer(connection, url, method);
    self->requests
        ->Add({{"listener", self->name},
               {"code", std::to_string(response.status)}})
        .Increment();
    MHD_Response* reply = MHD_create_response_from_buffer(
        response.body.size(), response.body.data(), MHD_RESPMEM_MUST_COPY);
    if (reply == nullptr) {
      return MHD_NO;
    }
    MHD_add_response_header(reply, MHD_HTTP_HEADER_CONTENT_TYPE,
                            response.content_type.c_str());
    const MHD_Result queued =
        MHD_queue_response(connection, response.status, reply);
    MHD_destroy_response(reply);
    return queued;
  }

  const std::string name;
  const std::map<std::string, HttpRoute> routes;
  const HttpLimits limits;
  ConnectionLimiter limiter;
  prometheus::Family<prometheus::Counter>* requests = nullptr;
  prometheus::Counter* refused_total = nullptr;
  prometheus::Counter* refused_peer = nullptr;
  prometheus::Gauge* open = nullptr;
  MHD_Daemon* daemon = nullptr;
};

HttpServer::HttpServer(std::string name,
                       std::map<std::string, HttpRoute> routes,
                       HttpLimits limits)
    : impl_(
          std::make_unique<Impl>(std::move(name), std::move(routes), limits)) {}

HttpServer::~HttpServer() { Stop(); }

int HttpServer::Start(const ListenAddress& address) {
  const int fd = BoundSocket(address);
  if (fd < 0) {
    throw std::runtime_error("cannot listen for " + impl_->name + " HTTP on " +
                             address.ToString() + ": " +
                             std::system_category().message(errno));
  }
  const int port = PortOf(fd);
  const HttpLimits& limits = impl_->limits;
  const unsigned threads = limits.threads == 0 ? 1 : limits.threads;
  const auto idle_seconds =
      static_cast<unsigned>((limits.idle_timeout.count() + 999) / 1000);
  // libmicrohttpd's own limit is a backstop above ours (it splits it between
  // its threads); ours refuses first, and is counted.
  const auto backstop =
      static_cast<unsigned>((limits.max_connections + 64) * threads);
  impl_->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, &Impl::OnAccept,
      impl_.get(), &Impl::OnRequest, impl_.get(), MHD_OPTION_LISTEN_SOCKET, fd,
      MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
      backstop, MHD_OPTION_CONNECTION_TIMEOUT, idle_seconds,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      static_cast<size_t>(limits.max_request_header_bytes),
      MHD_OPTION_NOTIFY_CONNECTION, &Impl::OnConnection, impl_.get(),
      MHD_OPTION_END);
  if (impl_->daemon == nullptr) {
    close(fd);
    throw std::runtime_error("cannot start " + impl_->name + " HTTP on " +
                             address.ToString());
  }
  return port;
}

void HttpServer::Stop() {
  if (impl_->daemon != nullptr) {
    MHD_stop_daemon(impl_->daemon);
    impl_->daemon = nullptr;
  }
}

}  // namespace attache
