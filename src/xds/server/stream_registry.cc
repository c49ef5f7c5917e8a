#include "xds/server/stream_registry.h"

#include <algorithm>
#include <map>
#include <vector>

#include "xds/server/xds_stream.h"

namespace attache {

StreamRegistry::StreamRegistry(SnapshotSetPtr initial, TtlConfig ttl)
    : ttl_(ttl), current_(std::move(initial)) {}

SnapshotSetPtr StreamRegistry::Register(
    const std::shared_ptr<XdsStream>& stream) {
  std::lock_guard lock(mu_);
  streams_[stream.get()] = stream;
  return current_;
}

void StreamRegistry::Unregister(const XdsStream* stream) {
  std::lock_guard lock(mu_);
  streams_.erase(stream);
}

std::vector<std::shared_ptr<XdsStream>> StreamRegistry::Streams() const {
  std::vector<std::shared_ptr<XdsStream>> streams;
  std::lock_guard lock(mu_);
  streams.reserve(streams_.size());
  for (const auto& [key, stream] : streams_) {
    streams.push_back(stream);
  }
  return streams;
}

void StreamRegistry::Publish(const SnapshotSetPtr& snapshots) {
  {
    std::lock_guard lock(mu_);
    current_ = snapshots;
  }
  for (const auto& stream : Streams()) {
    stream->OnSnapshot(snapshots);
  }
}

void StreamRegistry::Heartbeat() {
  for (const auto& stream : Streams()) {
    stream->Heartbeat();
  }
}

SnapshotSetPtr StreamRegistry::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

size_t StreamRegistry::size() const {
  std::lock_guard lock(mu_);
  return streams_.size();
}

std::map<std::string, size_t, std::less<>> StreamRegistry::CountByProtocol()
    const {
  std::map<std::string, size_t, std::less<>> counts = {{"sotw", 0},
                                                       {"delta", 0}};
  std::lock_guard lock(mu_);
  for (const auto& [key, stream] : streams_) {
    ++counts[std::string(stream->ProtocolName())];
  }
  return counts;
}

nlohmann::json StreamRegistry::ClientsJson() const {
  nlohmann::json clients = nlohmann::json::array();
  for (const auto& stream : Streams()) {
    clients.push_back(stream->DebugJson());
  }
  std::sort(clients.begin(), clients.end(),
            [](const nlohmann::json& a, const nlohmann::json& b) {
              return a["node_id"] < b["node_id"];
            });
  return clients;
}

nlohmann::json StreamRegistry::ViewsJson() const {
  std::map<std::string, nlohmann::json> views;
  for (const nlohmann::json& client : ClientsJson()) {
    const nlohmann::json& view = client["view"];
    nlohmann::json& entry = views[view["name"].get<std::string>()];
    if (entry.is_null()) {
      entry = view;
      entry["clients"] = nlohmann::json::array();
    }
    entry["clients"].push_back(client["node_id"]);
  }
  nlohmann::json out = nlohmann::json::array();
  for (auto& [name, view] : views) {
    out.push_back(std::move(view));
  }
  return out;
}

std::optional<envoy::config::core::v3::Node> StreamRegistry::NodeOf(
    const std::string& node_id) const {
  for (const auto& stream : Streams()) {
    auto node = stream->BoundNode();
    if (node && node->id() == node_id) {
      return node;
    }
  }
  return std::nullopt;
}

ClientTtl StreamRegistry::TtlFor(const envoy::config::core::v3::Node& node,
                                 Flavor flavor) const {
  ClientTtl out;
  if (ttl_.ttl.count() == 0 || flavor == Flavor::kGrpc) {
    return out;
  }
  bool supports_ttl = false;
  for (const auto& feature : node.client_features()) {
    supports_ttl =
        supports_ttl || feature == "xds.config.supports-resource-ttl";
    out.resource_in_sotw =
        out.resource_in_sotw || feature == "xds.config.resource-in-sotw";
  }
  if (supports_ttl) {
    out.ttl_ms = static_cast<uint64_t>(ttl_.ttl.count());
  }
  return out;
}

}  // namespace attache
