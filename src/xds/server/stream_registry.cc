#include "xds/server/stream_registry.h"

#include <vector>

#include "xds/server/sotw_stream.h"

namespace attache {

StreamRegistry::StreamRegistry(SnapshotSetPtr initial)
    : current_(std::move(initial)) {}

SnapshotSetPtr StreamRegistry::Register(
    const std::shared_ptr<SotwStream>& stream) {
  std::lock_guard lock(mu_);
  streams_[stream.get()] = stream;
  return current_;
}

void StreamRegistry::Unregister(const SotwStream* stream) {
  std::lock_guard lock(mu_);
  streams_.erase(stream);
}

void StreamRegistry::Publish(const SnapshotSetPtr& snapshots) {
  std::vector<std::shared_ptr<SotwStream>> streams;
  {
    std::lock_guard lock(mu_);
    current_ = snapshots;
    streams.reserve(streams_.size());
    for (const auto& [key, stream] : streams_) {
      streams.push_back(stream);
    }
  }
  for (const auto& stream : streams) {
    stream->OnSnapshot(snapshots);
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

nlohmann::json StreamRegistry::ClientsJson() const {
  std::vector<std::shared_ptr<SotwStream>> streams;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, stream] : streams_) {
      streams.push_back(stream);
    }
  }
  nlohmann::json clients = nlohmann::json::array();
  for (const auto& stream : streams) {
    clients.push_back(stream->DebugJson());
  }
  std::sort(clients.begin(), clients.end(),
            [](const nlohmann::json& a, const nlohmann::json& b) {
              return a["node_id"] < b["node_id"];
            });
  return clients;
}

}  // namespace attache
