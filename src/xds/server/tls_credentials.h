#pragma once

#include <grpcpp/security/server_credentials.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.h"
#include "config/tls_files.h"

namespace attache {

// gRPC server credentials for xds.tls that follow the files.
//
// gRPC 1.51's FileWatcherCertificateProvider re-reads files on its own, but
// hands gRPC whatever it finds: a half-written certificate, a key that does
// not match it or a missing file stops every new TLS handshake. So attache
// reads the configured files itself every `refresh`, checks them
// (CheckTlsFiles) and only then publishes them to gRPC, through in-memory
// files (memfd) that gRPC's provider watches every second: a bad rotation is
// logged and the last good certificate keeps serving; key and certificate
// share one in-memory file, so gRPC never sees one without the other.
class TlsCredentials {
 public:
  // Reads and checks the files; throws TlsFileError.
  explicit TlsCredentials(XdsTlsConfig config);
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;

  // For ServerBuilder::AddListeningPort.
  std::shared_ptr<grpc::ServerCredentials> credentials() const {
    return credentials_;
  }

  // "mutual TLS" or "TLS", and the files, for the start-up log line.
  std::string Describe() const;

  // Starts reading the files every `refresh`.
  void StartWatching();
  // Reads the files now; publishes them if they changed and are good. True
  // when something new was published.
  bool Reload();

  // For /metrics: when the certificate being served expires, and how many
  // bad rotations were refused (each distinct problem counted once, as it is
  // logged once).
  struct Status {
    std::chrono::system_clock::time_point not_after;
    uint64_t refused = 0;
    // Client certificates turned away by xds.tls.client_names.
    uint64_t refused_clients = 0;
  };
  Status status() const;

 private:
  enum class ReloadResult { kUnchanged, kPublished, kProblem };
  void Watch();
  // Reads and checks the files, publishes them if they changed; logs a
  // problem (once) if `report`.
  ReloadResult TryReload(bool report);
  void Publish(const TlsFiles& files, const TlsMaterial& material);

  const XdsTlsConfig config_;
  // In-memory files gRPC reads (see CreateMemoryFile); never closed.
  int identity_fd_ = -1;
  int client_ca_fd_ = -1;
  std::shared_ptr<grpc::ServerCredentials> credentials_;

  mutable std::mutex reload_mu_;  // one Reload at a time
  TlsFiles current_;              // as last published
  std::chrono::system_clock::time_point current_since_;
  std::chrono::system_clock::time_point current_not_after_;
  std::string reported_problem_;  // the last problem logged, to log it once
  uint64_t refused_ = 0;
  const std::shared_ptr<std::atomic<uint64_t>> refused_clients_ =
      std::make_shared<std::atomic<uint64_t>>(0);

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread watcher_;
};

}  // namespace attache
