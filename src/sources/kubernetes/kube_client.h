#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "sources/kubernetes/credentials.h"
#include "sources/kubernetes/kubeconfig.h"

namespace attache {

struct HttpResult {
  long status = 0;    // HTTP status; 0 when no answer arrived
  std::string body;   // Get only
  std::string error;  // transport problem, worded for a log line
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

// HTTPS to one API server with libcurl: TLS verified against the cluster's
// CA unless the kubeconfig says otherwise, client certificates, bearer
// tokens (refreshed once on 401). Never through a proxy.
class KubeClient {
 public:
  KubeClient(const ClusterAccess& access,
             std::chrono::milliseconds request_timeout);

  HttpResult Get(const std::string& path);

  // A streaming GET: `on_accepted` runs once the server answered 200;
  // `on_line` gets each complete line and returns false to stop. Also stops
  // when `stopped` turns true, when the server has not answered (status and
  // headers) within the request timeout, when no byte arrives for
  // `idle_limit`, when the stream is still open `max_duration` after it
  // started (zero: no limit), or when the server ends the stream. The first
  // three catch a hung server, the last one a server that trickles bytes.
  HttpResult Stream(const std::string& path, std::chrono::seconds idle_limit,
                    std::chrono::milliseconds max_duration,
                    const std::function<bool(std::string_view)>& on_line,
                    const std::function<void()>& on_accepted,
                    const std::function<bool()>& stopped);

  const std::string& server() const { return access_.server; }
  std::chrono::milliseconds request_timeout() const { return request_timeout_; }

 private:
  HttpResult Perform(const std::string& path, bool streaming,
                     std::chrono::seconds idle_limit,
                     std::chrono::milliseconds max_duration,
                     const std::function<bool(std::string_view)>* on_line,
                     const std::function<void()>* on_accepted,
                     const std::function<bool()>* stopped);

  const ClusterAccess access_;
  const std::chrono::milliseconds request_timeout_;
  BearerTokenSource tokens_;
};

}  // namespace attache
