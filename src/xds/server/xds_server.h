#pragma once

#include <grpcpp/server.h>

#include <chrono>
#include <memory>
#include <string>

#include "xds/server/stream_registry.h"

namespace attache {

// The gRPC server for xDS: ADS and the per-type state-of-the-world services,
// all on one generic callback service so that responses can be assembled
// from shared bytes instead of per-stream messages.
class XdsServer {
 public:
  explicit XdsServer(SnapshotSetPtr initial);
  ~XdsServer();
  XdsServer(const XdsServer&) = delete;
  XdsServer& operator=(const XdsServer&) = delete;

  // Binds `address` ("host:port", port 0 for any) and serves; returns the
  // bound port. Throws std::runtime_error when it cannot bind.
  int Start(const std::string& address);
  void Shutdown(std::chrono::milliseconds grace);

  StreamRegistry& registry() { return registry_; }

 private:
  class Service;

  StreamRegistry registry_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace attache
