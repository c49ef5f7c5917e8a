#pragma once

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

#include "sources/kubernetes/kubeconfig.h"

namespace attache {

// The bearer token for an API server, kept fresh: a token file is re-read
// when it changes (service-account tokens rotate), an exec plugin is run
// again when its credential expires or the server answered 401.
class BearerTokenSource {
 public:
  explicit BearerTokenSource(const ClusterAccess& access);

  // Empty when the cluster uses no token. Throws std::runtime_error when a
  // token file cannot be read or a plugin fails.
  std::string Token();
  // The server refused the token: fetch a new one next time.
  void Invalidate();

 private:
  std::string RunExecPlugin();

  std::mutex mu_;
  const std::string fixed_token_;
  const std::filesystem::path token_file_;
  const std::optional<ExecCredentialPlugin> exec_;
  std::string cached_;
  std::filesystem::file_time_type file_mtime_{};
  std::optional<std::chrono::system_clock::time_point> expires_;
  bool valid_ = false;
};

}  // namespace attache
