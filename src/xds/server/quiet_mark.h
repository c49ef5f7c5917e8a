#pragma once

#include <memory>
#include <string>
#include <vector>

#include "xds/cache/snapshot.h"

namespace attache {

// The map of one resource type in which a stream last found nothing to send,
// kept only while nothing else about the stream's state for that type
// changes. A later map then holds nothing new for the stream when it is the
// same map, or the next one and its changes touch no name the stream cares
// about: a publication costs each stream the changed names, not everything
// it subscribes to.
class QuietMark {
 public:
  template <typename Concerns>
  bool StillQuiet(const ViewSnapshot& snapshot, ResourceType type,
                  Concerns concerns) const {
    if (!set_) {
      return false;
    }
    const ResourceMapPtr& current = snapshot.resources[Index(type)];
    if (Same(current)) {
      return true;
    }
    const MapChangePtr& change = snapshot.changes[Index(type)];
    if (!change || !Same(change->base)) {
      return false;
    }
    for (const std::string& name : change->names) {
      if (concerns(name)) {
        return false;
      }
    }
    return true;
  }
  // The names that changed since the marked map, when `snapshot` holds its
  // direct successor; null when that is unknown.
  const std::vector<std::string>* ChangedSince(const ViewSnapshot& snapshot,
                                               ResourceType type) const {
    const MapChangePtr& change = snapshot.changes[Index(type)];
    if (!set_ || !change || !Same(change->base)) {
      return nullptr;
    }
    return &change->names;
  }
  void Set(const ViewSnapshot& snapshot, ResourceType type) {
    map_ = snapshot.resources[Index(type)];
    set_ = true;
  }
  void Clear() {
    map_.reset();
    set_ = false;
  }

 private:
  // By identity; a weak pointer keeps the identity from being reused.
  template <typename Pointer>
  bool Same(const Pointer& other) const {
    return !map_.owner_before(other) && !other.owner_before(map_);
  }

  std::weak_ptr<const ResourceMap> map_;
  bool set_ = false;
};

}  // namespace attache
