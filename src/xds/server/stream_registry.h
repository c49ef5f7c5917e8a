#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "envoy/config/core/v3/base.pb.h"
#include "xds/cache/snapshot.h"
#include "xds/server/stream_types.h"

namespace attache {

class XdsStream;

// The open streams and the current snapshots. Publishing hands the new
// snapshots to every stream outside the registry lock, so a slow stream never
// blocks registration of others.
class StreamRegistry {
 public:
  StreamRegistry(SnapshotSetPtr initial, TtlConfig ttl);

  // Adds a stream and returns the snapshots it starts from.
  SnapshotSetPtr Register(const std::shared_ptr<XdsStream>& stream);
  void Unregister(const XdsStream* stream);

  void Publish(const SnapshotSetPtr& snapshots);
  void Heartbeat();
  SnapshotSetPtr Current() const;
  size_t size() const;
  // Connected clients by protocol ("sotw", "delta"); both always present.
  std::map<std::string, size_t, std::less<>> CountByProtocol() const;
  nlohmann::json ClientsJson() const;
  // The views connected clients use, with how many clients each.
  nlohmann::json ViewsJson() const;
  // The node of a connected client, by node id.
  std::optional<envoy::config::core::v3::Node> NodeOf(
      const std::string& node_id) const;

  // TTLs go only to clients that announce support, and never to gRPC.
  ClientTtl TtlFor(const envoy::config::core::v3::Node& node,
                   Flavor flavor) const;
  const TtlConfig& ttl() const { return ttl_; }

 private:
  std::vector<std::shared_ptr<XdsStream>> Streams() const;

  const TtlConfig ttl_;
  mutable std::mutex mu_;
  SnapshotSetPtr current_;
  std::unordered_map<const XdsStream*, std::shared_ptr<XdsStream>> streams_;
};

}  // namespace attache
