#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "translate/translate.h"
#include "xds/cache/resource.h"

namespace attache {

// The immutable resource set of one view at one catalog generation.
struct ViewSnapshot {
  uint64_t generation = 0;
  std::array<ResourceMap, kResourceTypeCount> resources;

  const ResourceMap& Of(ResourceType type) const {
    return resources[Index(type)];
  }
};
using ViewSnapshotPtr = std::shared_ptr<const ViewSnapshot>;

// Every view's snapshot for one catalog generation.
struct SnapshotSet {
  uint64_t generation = 0;
  std::array<ViewSnapshotPtr, kAllFlavors.size()> views;

  const ViewSnapshotPtr& For(Flavor flavor) const {
    return views[static_cast<size_t>(flavor)];
  }
};
using SnapshotSetPtr = std::shared_ptr<const SnapshotSet>;

// Serializes a view's translated resources. Resources whose bytes did not
// change since `previous` are reused as they are, so their shared buffers
// (and every response that holds them) stay valid and nothing is copied.
ViewSnapshotPtr BuildViewSnapshot(uint64_t generation,
                                  const TranslatedResources& translated,
                                  const ViewSnapshot* previous);

SnapshotSetPtr BuildSnapshotSet(const CatalogSnapshot& catalog,
                                const TranslateOptions& options,
                                const SnapshotSet* previous);

}  // namespace attache
