#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "config/config.h"

namespace attache {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};
using HttpQuery = std::multimap<std::string, std::string>;
using HttpRoute = std::function<HttpResponse(const HttpQuery&)>;

struct HttpLimits {
  uint32_t max_connections = 256;
  uint32_t max_connections_per_peer = 16;
  std::chrono::milliseconds idle_timeout{10'000};
  uint32_t max_request_header_bytes = 16 * 1024;
  unsigned threads = 1;  // event loops; a slow route holds up only its own
};

// A small HTTP/1.1 server for GET routes on libmicrohttpd's event loops: a
// slow or idle client costs a socket and a few KiB, not a thread. Beyond a
// limit a connection is refused or closed, never queued; requests with a
// body get 413 without the body being read; other methods get 405. Counts
// what it serves and refuses in attache_admin_* metrics, labelled `name`.
class HttpServer {
 public:
  HttpServer(std::string name, std::map<std::string, HttpRoute> routes,
             HttpLimits limits);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and serves; returns the bound port. Throws on failure.
  int Start(const ListenAddress& address);
  void Stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace attache
