#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "xds/cache/snapshot.h"

namespace attache {

class SotwStream;

// The open streams and the current snapshots. Publishing hands the new
// snapshots to every stream outside the registry lock, so a slow stream never
// blocks registration of others.
class StreamRegistry {
 public:
  explicit StreamRegistry(SnapshotSetPtr initial);

  // Adds a stream and returns the snapshots it starts from.
  SnapshotSetPtr Register(const std::shared_ptr<SotwStream>& stream);
  void Unregister(const SotwStream* stream);

  void Publish(const SnapshotSetPtr& snapshots);
  SnapshotSetPtr Current() const;
  size_t size() const;
  nlohmann::json ClientsJson() const;

 private:
  mutable std::mutex mu_;
  SnapshotSetPtr current_;
  std::unordered_map<const SotwStream*, std::shared_ptr<SotwStream>> streams_;
};

}  // namespace attache
