#pragma once

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "envoy/config/core/v3/base.pb.h"
#include "xds/cache/snapshot.h"
#include "xds/server/stream_types.h"

namespace attache {

// One flavour of the xDS protocol on a stream (state of the world or
// incremental): parses requests, keeps the per-type state and turns snapshots
// into encoded responses. Not thread-safe; the stream serializes calls.
class StreamProtocol {
 public:
  virtual ~StreamProtocol() = default;

  virtual std::string_view Name() const = 0;  // "sotw" or "delta"
  // Parses one request and keeps it for the calls below; false if it does
  // not parse.
  virtual bool Parse(const grpc::ByteBuffer& bytes) = 0;
  virtual const envoy::config::core::v3::Node& RequestNode() const = 0;
  // Checks the parsed request against the limits of stream_types.h before
  // it is applied; `binding`: its node is about to be bound to the stream.
  // Unset: within limits. Otherwise the stream ends with that status.
  struct Rejection {
    RejectReason reason;
    grpc::Status status;
  };
  virtual std::optional<Rejection> CheckLimits(bool binding) const = 0;
  // Applies the parsed request. `detail` describes it for the log.
  virtual RequestOutcome Apply(std::string* detail) = 0;
  virtual void Poll(const ViewSnapshot& snapshot, const ClientTtl& ttl,
                    std::deque<grpc::ByteBuffer>* out) = 0;
  virtual void Heartbeat(const ViewSnapshot& snapshot, const ClientTtl& ttl,
                         std::deque<grpc::ByteBuffer>* out) = 0;
  virtual nlohmann::json TypesJson() const = 0;
};

// What a stream keeps of a client's node: the fields attache reads (id,
// cluster, locality, user agent, client features and attache's metadata
// keys), not Envoy's list of extensions or other metadata, which would
// cost tens of KiB per stream.
envoy::config::core::v3::Node BoundNodeOf(
    const envoy::config::core::v3::Node& node);

std::unique_ptr<StreamProtocol> MakeSotwProtocol(
    std::optional<ResourceType> only_type);
std::unique_ptr<StreamProtocol> MakeDeltaProtocol(
    std::optional<ResourceType> only_type);

}  // namespace attache
