#pragma once

#include <grpcpp/server.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.h"
#include "xds/server/stream_registry.h"

namespace attache {

class TlsCredentials;

// The gRPC server for xDS: ADS and the per-type services, state of the world
// and delta, all on one generic callback service so that responses can be
// assembled from shared bytes instead of per-stream messages.
class XdsServer {
 public:
  XdsServer(SnapshotSetPtr initial, TtlConfig ttl = {});
  ~XdsServer();
  XdsServer(const XdsServer&) = delete;
  XdsServer& operator=(const XdsServer&) = delete;

  // Binds `address` ("host:port", port 0 for any) and serves, over TLS if
  // `tls` is enabled (its files then followed as they change); returns the
  // bound port. Throws ConfigError when the TLS files are not usable,
  // std::runtime_error when it cannot bind.
  int Start(const std::string& address, const XdsTlsConfig& tls = {});
  void Shutdown(std::chrono::milliseconds grace);

  StreamRegistry& registry() { return registry_; }
  // The TLS files being followed; null without xds.tls (or before Start).
  const TlsCredentials* tls() const { return tls_.get(); }

 private:
  class Service;
  void SendHeartbeats();

  StreamRegistry registry_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<TlsCredentials> tls_;
  std::unique_ptr<grpc::Server> server_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread heartbeats_;
};

}  // namespace attache
