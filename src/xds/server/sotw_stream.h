#pragma once

#include <grpcpp/generic/async_generic_service.h>

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "envoy/config/core/v3/base.pb.h"
#include "translate/view.h"
#include "xds/cache/snapshot.h"
#include "xds/server/sotw_state.h"

namespace attache {

class StreamRegistry;

// One state-of-the-world xDS stream (ADS or a per-type service) on gRPC's
// callback API. The protocol lives in SotwState; this class moves bytes and
// keeps at most one write outstanding. It owns itself until gRPC calls
// OnDone; the registry may hold it a little longer, so every entry point
// checks whether the stream is still open.
class SotwStream final : public grpc::ServerGenericBidiReactor,
                         public std::enable_shared_from_this<SotwStream> {
 public:
  static grpc::ServerGenericBidiReactor* Open(
      StreamRegistry* registry, grpc::GenericCallbackServerContext* context,
      std::optional<ResourceType> only_type);

  SotwStream(StreamRegistry* registry, std::optional<ResourceType> only_type,
             std::string peer);

  // A new catalog generation: send what changed for this stream.
  void OnSnapshot(const SnapshotSetPtr& snapshots);
  nlohmann::json DebugJson() const;

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  using Lock = std::unique_lock<std::mutex>;

  void HandleRequest(const grpc::ByteBuffer& bytes);
  void QueueResponses(Lock& lock);
  // Starts the next write, or the pending Finish; releases the lock.
  void Pump(Lock& lock);
  void FinishWith(Lock& lock, grpc::Status status);

  StreamRegistry* const registry_;
  const std::string peer_;
  const std::chrono::system_clock::time_point connected_at_;

  mutable std::mutex mu_;
  SotwState state_;
  envoy::config::core::v3::Node node_;
  bool bound_ = false;  // node seen and registered for snapshots
  Flavor flavor_ = Flavor::kEnvoy;
  ViewSnapshotPtr snapshot_;
  grpc::ByteBuffer read_buffer_;
  std::deque<grpc::ByteBuffer> write_queue_;
  bool writing_ = false;
  std::optional<grpc::Status> finish_status_;  // set: finish after the write
  bool finished_ = false;                      // Finish() was called
  std::shared_ptr<SotwStream> self_;
};

}  // namespace attache
