#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "translate/translate.h"
#include "xds/cache/resource.h"

namespace attache {

using ResourceMapPtr = std::shared_ptr<const ResourceMap>;

// How a map differs from the map that held the same resources one
// generation earlier: a stream that was up to date with `base` needs to look
// at `names` only, not at every resource it subscribes to.
struct MapChange {
  std::weak_ptr<const ResourceMap> base;
  std::vector<std::string> names;  // added, changed or removed; sorted
};
using MapChangePtr = std::shared_ptr<const MapChange>;

// A map and what changed in it. A map whose resources all stayed the same is
// carried over as the same pointer, change and all.
struct SharedMap {
  ResourceMapPtr map;
  MapChangePtr change;  // null: nothing known about an earlier map
};

// The immutable resource set of one view at one catalog generation. Maps are
// shared: every view of a flavor holds the same clusters, every view of a
// place the same load assignments.
struct ViewSnapshot {
  uint64_t generation = 0;
  ViewKey key;
  std::array<ResourceMapPtr, kResourceTypeCount> resources;
  std::array<MapChangePtr, kResourceTypeCount> changes;

  const ResourceMap& Of(ResourceType type) const {
    return *resources[Index(type)];
  }
};
using ViewSnapshotPtr = std::shared_ptr<const ViewSnapshot>;

// Every view of one catalog generation. A view is translated when the first
// client that needs it asks, then shared by all its clients; views no client
// needs are never built. Resources whose bytes did not change since the
// previous generation are reused as they are, so their buffers stay shared,
// and a service that did not change since then is not translated again.
class SnapshotSet {
 public:
  SnapshotSet(std::shared_ptr<const CatalogSnapshot> catalog,
              TranslateOptions options,
              std::shared_ptr<const SnapshotSet> previous);

  uint64_t generation() const { return catalog_->generation; }
  const CatalogSnapshot& catalog() const { return *catalog_; }

  ViewSnapshotPtr View(const ViewKey& key) const;
  ViewSnapshotPtr For(Flavor flavor) const { return View(ViewKey{flavor, {}}); }
  // The views built so far, in key order.
  std::vector<ViewKey> BuiltViews() const;
  // How many distinct load-assignment maps the views built so far hold:
  // places that rank every locality of the catalog alike share one, so
  // this stays near the number of zones however many places clients claim.
  size_t EndpointMapCount() const;
  // Called once the set was published: later views gain little from reuse,
  // and holding the previous set would keep every generation alive.
  void ForgetPrevious() const;

 private:
  template <typename T>
  struct Slot {
    std::mutex mu;
    std::shared_ptr<const T> value;
  };
  struct FlavorMaps {
    SharedMap clusters;
    SharedMap listeners;
    SharedMap routes;
  };

  std::shared_ptr<const FlavorMaps> Flavored(Flavor flavor) const;
  std::shared_ptr<const SharedMap> Endpoints(const ClientPlace& place) const;
  // The place whose load assignments `place` gets: the first place asked
  // for in this generation that ranks every locality of the catalog the
  // same (the place-less one for a place no endpoint is in or near).
  ClientPlace Representative(const ClientPlace& place) const;
  std::shared_ptr<const FlavorMaps> PeekFlavored(Flavor flavor) const;
  std::shared_ptr<const SharedMap> PeekEndpoints(
      const ClientPlace& place) const;
  // The previous generation's service of this name if it equals `service`:
  // its resources can be reused without translating it again.
  bool Unchanged(const SnapshotSet* before, const std::string& name,
                 const SharedService& service) const;
  std::shared_ptr<const SnapshotSet> Previous() const;

  const std::shared_ptr<const CatalogSnapshot> catalog_;
  const TranslateOptions options_;

  mutable std::mutex mu_;  // guards the slot maps, never held while building
  mutable std::shared_ptr<const SnapshotSet> previous_;
  mutable std::map<Flavor, std::shared_ptr<Slot<FlavorMaps>>> flavors_;
  mutable std::map<ClientPlace, std::shared_ptr<Slot<SharedMap>>> endpoints_;
  mutable std::map<ViewKey, std::shared_ptr<Slot<ViewSnapshot>>> views_;
  // Representatives by PlaceSignature over every locality of the catalog.
  mutable std::map<std::string, ClientPlace> representatives_;
  mutable std::once_flag localities_once_;
  mutable std::set<Locality> localities_;  // every locality of the catalog
  // Place-ranked load assignments by cluster name and PlaceSignature: places
  // that rank a service's localities alike share one translation.
  mutable std::mutex placed_mu_;
  mutable std::map<std::string, ResourcePtr, std::less<>> placed_;
};
using SnapshotSetPtr = std::shared_ptr<const SnapshotSet>;

SnapshotSetPtr BuildSnapshotSet(std::shared_ptr<const CatalogSnapshot> catalog,
                                const TranslateOptions& options,
                                SnapshotSetPtr previous);
// For tests and one-off tools: copies the catalog.
SnapshotSetPtr BuildSnapshotSet(const CatalogSnapshot& catalog,
                                const TranslateOptions& options,
                                SnapshotSetPtr previous);

}  // namespace attache
