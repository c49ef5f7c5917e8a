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
#include "xds/server/stream_protocol.h"

namespace attache {

class StreamRegistry;

// One xDS stream (ADS or a per-type service, state of the world or delta) on
// gRPC's callback API. The protocol lives in StreamProtocol; this class binds
// the client to its view and moves bytes, with at most one write
// outstanding. It owns itself until gRPC calls OnDone; the registry may hold
// it a little longer, so every entry point checks whether it is still open.
class XdsStream final : public grpc::ServerGenericBidiReactor,
                        public std::enable_shared_from_this<XdsStream> {
 public:
  static grpc::ServerGenericBidiReactor* Open(
      StreamRegistry* registry, grpc::GenericCallbackServerContext* context,
      std::unique_ptr<StreamProtocol> protocol);

  XdsStream(StreamRegistry* registry, std::unique_ptr<StreamProtocol> protocol,
            std::string peer);

  // A new catalog generation: send what changed for this stream.
  void OnSnapshot(const SnapshotSetPtr& snapshots);
  // Refreshes the TTLs of what the client holds, if it uses TTLs.
  void Heartbeat();
  nlohmann::json DebugJson() const;
  // "sotw" or "delta"; fixed for the stream's life.
  std::string_view ProtocolName() const { return protocol_->Name(); }
  std::optional<envoy::config::core::v3::Node> BoundNode() const;

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;

 private:
  using Lock = std::unique_lock<std::mutex>;

  void HandleRequest(const grpc::ByteBuffer& bytes);
  void Bind(Lock& lock);
  void QueueResponses(Lock& lock);
  // Ends the stream when more than kMaxQueuedResponses wait to be written.
  void LimitQueue(Lock& lock);
  // Counts, logs (rate-limited) and ends the stream with `status`.
  void Reject(Lock& lock, RejectReason reason, grpc::Status status);
  // Starts the next write, or the pending Finish; releases the lock.
  void Pump(Lock& lock);
  void FinishWith(Lock& lock, grpc::Status status);
  // Sets the final status and drops unsent responses; Pump finishes.
  void MarkFinish(grpc::Status status);

  StreamRegistry* const registry_;
  const std::string peer_;
  const std::chrono::system_clock::time_point connected_at_;

  mutable std::mutex mu_;
  std::unique_ptr<StreamProtocol> protocol_;
  envoy::config::core::v3::Node node_;
  bool bound_ = false;  // node seen and registered for snapshots
  ViewKey view_;
  ClientTtl ttl_;
  ViewSnapshotPtr snapshot_;
  grpc::ByteBuffer read_buffer_;
  std::deque<grpc::ByteBuffer> write_queue_;
  // When each response of write_queue_ was queued, for the push duration.
  std::deque<std::chrono::steady_clock::time_point> queued_at_;
  bool writing_ = false;
  std::optional<grpc::Status> finish_status_;  // set: finish after the write
  bool finished_ = false;                      // Finish() was called
  std::shared_ptr<XdsStream> self_;
};

}  // namespace attache
