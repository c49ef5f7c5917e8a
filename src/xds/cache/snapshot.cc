#include "xds/cache/snapshot.h"

namespace attache {
namespace {

ResourcePtr Reused(ResourcePtr resource, const ResourceMap* previous) {
  if (previous != nullptr) {
    auto it = previous->find(resource->name);
    if (it != previous->end() && it->second->version == resource->version) {
      return it->second;
    }
  }
  return resource;
}

// The previous generation's resource when its source did not change (no
// translation at all), else a fresh one (shared with the previous generation
// anyway when its bytes came out the same).
template <typename MakeMessage>
ResourcePtr Build(ResourceType type, const std::string& name, bool unchanged,
                  const ResourceMap* previous, MakeMessage make) {
  if (unchanged && previous != nullptr) {
    if (auto it = previous->find(name); it != previous->end()) {
      return it->second;
    }
  }
  return Reused(MakeResource(type, name, make()), previous);
}

// What follows `old` now that it holds `fresh`: `old` itself when no
// resource changed, so streams can tell "nothing new" by pointer.
SharedMap Succeed(ResourceMap fresh, const SharedMap* old) {
  if (old == nullptr || !old->map) {
    return {std::make_shared<const ResourceMap>(std::move(fresh)), nullptr};
  }
  const ResourceMap& before = *old->map;
  std::vector<std::string> names;
  auto a = before.begin();
  auto b = fresh.begin();
  while (a != before.end() || b != fresh.end()) {
    if (b == fresh.end() || (a != before.end() && a->first < b->first)) {
      names.push_back((a++)->first);
    } else if (a == before.end() || b->first < a->first) {
      names.push_back((b++)->first);
    } else {
      if (a->second->version != b->second->version) {
        names.push_back(a->first);
      }
      ++a;
      ++b;
    }
  }
  if (names.empty()) {
    return *old;
  }
  auto change = std::make_shared<MapChange>();
  change->base = old->map;
  change->names = std::move(names);
  return {std::make_shared<const ResourceMap>(std::move(fresh)),
          std::move(change)};
}

const ResourceMap* MapOf(const std::shared_ptr<const SharedMap>& shared) {
  return shared ? shared->map.get() : nullptr;
}

// The slot of `key` in `slots`, created when missing.
template <typename Map>
auto SlotOf(std::mutex& mu, Map& slots, const typename Map::key_type& key) {
  std::lock_guard lock(mu);
  auto& slot = slots[key];
  if (!slot) {
    slot = std::make_shared<typename Map::mapped_type::element_type>();
  }
  return slot;
}

// The value of `key` if it was built, without building it.
template <typename Map>
auto Peek(std::mutex& mu, const Map& slots, const typename Map::key_type& key)
    -> decltype(slots.begin()->second->value) {
  std::shared_ptr<typename Map::mapped_type::element_type> slot;
  {
    std::lock_guard lock(mu);
    auto it = slots.find(key);
    if (it == slots.end()) {
      return nullptr;
    }
    slot = it->second;
  }
  std::lock_guard lock(slot->mu);
  return slot->value;
}

}  // namespace

SnapshotSet::SnapshotSet(std::shared_ptr<const CatalogSnapshot> catalog,
                         TranslateOptions options,
                         std::shared_ptr<const SnapshotSet> previous)
    : catalog_(std::move(catalog)),
      options_(std::move(options)),
      previous_(std::move(previous)) {}

std::shared_ptr<const SnapshotSet> SnapshotSet::Previous() const {
  std::lock_guard lock(mu_);
  return previous_;
}

void SnapshotSet::ForgetPrevious() const {
  std::lock_guard lock(mu_);
  previous_.reset();
}

std::shared_ptr<const SnapshotSet::FlavorMaps> SnapshotSet::PeekFlavored(
    Flavor flavor) const {
  return Peek(mu_, flavors_, flavor);
}

std::shared_ptr<const SharedMap> SnapshotSet::PeekEndpoints(
    const ClientPlace& place) const {
  bool placed_built = false;
  {
    std::lock_guard lock(mu_);
    placed_built = !representatives_.empty();
  }
  // No placed map was built here: do not gather this set's localities only
  // to find nothing.
  if (!placed_built && !(place == ClientPlace{})) {
    return nullptr;
  }
  return Peek(mu_, endpoints_, Representative(place));
}

bool SnapshotSet::Unchanged(const SnapshotSet* before, const std::string& name,
                            const SharedService& service) const {
  if (before == nullptr) {
    return false;
  }
  const auto& services = before->catalog_->services;
  auto it = services.find(name);
  return it != services.end() && it->second == service;
}

std::shared_ptr<const SnapshotSet::FlavorMaps> SnapshotSet::Flavored(
    Flavor flavor) const {
  auto slot = SlotOf(mu_, flavors_, flavor);
  std::lock_guard lock(slot->mu);
  if (slot->value) {
    return slot->value;
  }
  const auto before = Previous();
  const auto old = before ? before->PeekFlavored(flavor) : nullptr;
  const ResourceMap* old_clusters = old ? old->clusters.map.get() : nullptr;
  const ResourceMap* old_listeners = old ? old->listeners.map.get() : nullptr;
  const ResourceMap* old_routes = old ? old->routes.map.get() : nullptr;
  ResourceMap clusters;
  ResourceMap listeners;
  ResourceMap routes;
  for (const auto& entry : catalog_->services) {
    // Named references: lambdas cannot capture structured bindings (clang).
    const std::string& name = entry.first;
    const Service& service = *entry.second;
    const std::string cluster =
        ClusterName(options_.cluster_name_template, name);
    if (!clusters.contains(cluster)) {  // the first service of a name wins
      clusters.emplace(
          cluster,
          Build(ResourceType::kCluster, cluster,
                Unchanged(before.get(), name, entry.second), old_clusters, [&] {
                  return MakeCluster(cluster, service, options_.defaults,
                                     flavor);
                }));
    }
    if (flavor == Flavor::kGrpc) {
      // A listener depends on the name alone; a route also on the retry
      // policy.
      listeners.emplace(
          name, Build(ResourceType::kListener, name, true, old_listeners,
                      [&] { return MakeApiListener(name); }));
      routes.emplace(
          name,
          Build(ResourceType::kRoute, name,
                Unchanged(before.get(), name, entry.second), old_routes, [&] {
                  return MakeRouteConfiguration(
                      name, cluster,
                      ResilienceOf(service, options_.defaults).retry_policy);
                }));
    }
  }
  auto maps = std::make_shared<FlavorMaps>();
  maps->clusters = Succeed(std::move(clusters), old ? &old->clusters : nullptr);
  maps->listeners =
      Succeed(std::move(listeners), old ? &old->listeners : nullptr);
  maps->routes = Succeed(std::move(routes), old ? &old->routes : nullptr);
  slot->value = std::move(maps);
  return slot->value;
}

ClientPlace SnapshotSet::Representative(const ClientPlace& place) const {
  const ClientPlace nowhere;
  if (place == nowhere) {
    return place;
  }
  std::call_once(localities_once_, [this] {
    for (const auto& [name, service] : catalog_->services) {
      for (const Endpoint& endpoint : service->endpoints) {
        localities_.insert(endpoint.locality);
      }
    }
  });
  const std::string signature = PlaceSignature(localities_, place);
  std::lock_guard lock(mu_);
  if (representatives_.empty()) {
    representatives_.emplace(PlaceSignature(localities_, nowhere), nowhere);
  }
  return representatives_.try_emplace(signature, place).first->second;
}

size_t SnapshotSet::EndpointMapCount() const {
  std::lock_guard lock(mu_);
  return endpoints_.size();
}

std::shared_ptr<const SharedMap> SnapshotSet::Endpoints(
    const ClientPlace& place) const {
  // A client may claim any place it likes; the maps built follow the
  // catalog's localities instead.
  if (ClientPlace shared = Representative(place); !(shared == place)) {
    return Endpoints(shared);
  }
  auto slot = SlotOf(mu_, endpoints_, place);
  std::lock_guard lock(slot->mu);
  if (slot->value) {
    return slot->value;
  }
  const auto before = Previous();
  const auto old = before ? before->PeekEndpoints(place) : nullptr;
  const ClientPlace nowhere;
  ResourceMap map;
  if (place == nowhere) {
    for (const auto& entry : catalog_->services) {
      // Named references: lambdas cannot capture structured bindings (clang).
      const std::string& name = entry.first;
      const Service& service = *entry.second;
      const std::string cluster =
          ClusterName(options_.cluster_name_template, name);
      if (map.contains(cluster)) {
        continue;
      }
      map.emplace(
          cluster,
          Build(ResourceType::kEndpoint, cluster,
                Unchanged(before.get(), name, entry.second), MapOf(old), [&] {
                  return MakeLoadAssignment(
                      cluster, service, FailoverOf(service, options_.defaults),
                      nowhere, options_.defaults.local_percent,
                      OverprovisioningOf(service, options_.defaults));
                }));
    }
    slot->value =
        std::make_shared<const SharedMap>(Succeed(std::move(map), old.get()));
    return slot->value;
  }
  // Start from the place-less assignments and replace those whose policy
  // depends on the place: a flat service is translated once for all places.
  map = *Endpoints(nowhere)->map;
  // Equal bytes are worth sharing even with what another place had before.
  const auto similar =
      old ? old : (before ? before->PeekEndpoints(nowhere) : nullptr);
  for (const auto& entry : catalog_->services) {
    const std::string& service_name = entry.first;
    const Service& service = *entry.second;
    const FailoverPolicy policy = FailoverOf(service, options_.defaults);
    if (policy == FailoverPolicy::kFlat) {
      continue;
    }
    const std::string cluster =
        ClusterName(options_.cluster_name_template, service_name);
    const std::string key = cluster + '\n' + PlaceSignature(service, place);
    ResourcePtr resource;
    {
      std::lock_guard placed_lock(placed_mu_);
      if (auto it = placed_.find(key); it != placed_.end()) {
        resource = it->second;
      }
    }
    if (!resource) {
      // Only this place's own previous map holds what this place saw.
      resource =
          Build(ResourceType::kEndpoint, cluster,
                old && Unchanged(before.get(), service_name, entry.second),
                MapOf(similar), [&] {
                  return MakeLoadAssignment(
                      cluster, service, policy, place,
                      options_.defaults.local_percent,
                      OverprovisioningOf(service, options_.defaults));
                });
      std::lock_guard placed_lock(placed_mu_);
      placed_.emplace(key, resource);
    }
    map.insert_or_assign(cluster, std::move(resource));
  }
  slot->value =
      std::make_shared<const SharedMap>(Succeed(std::move(map), old.get()));
  return slot->value;
}

ViewSnapshotPtr SnapshotSet::View(const ViewKey& key) const {
  auto slot = SlotOf(mu_, views_, key);
  std::lock_guard lock(slot->mu);
  if (!slot->value) {
    const auto flavored = Flavored(key.flavor);
    auto view = std::make_shared<ViewSnapshot>();
    view->generation = generation();
    view->key = key;
    const auto endpoints = Endpoints(key.place);
    const std::pair<ResourceType, const SharedMap*> maps[] = {
        {ResourceType::kCluster, &flavored->clusters},
        {ResourceType::kEndpoint, endpoints.get()},
        {ResourceType::kListener, &flavored->listeners},
        {ResourceType::kRoute, &flavored->routes}};
    for (const auto& [type, shared] : maps) {
      view->resources[Index(type)] = shared->map;
      view->changes[Index(type)] = shared->change;
    }
    slot->value = std::move(view);
  }
  return slot->value;
}

std::vector<ViewKey> SnapshotSet::BuiltViews() const {
  std::lock_guard lock(mu_);
  std::vector<ViewKey> keys;
  keys.reserve(views_.size());
  for (const auto& [key, slot] : views_) {
    keys.push_back(key);
  }
  return keys;
}

SnapshotSetPtr BuildSnapshotSet(std::shared_ptr<const CatalogSnapshot> catalog,
                                const TranslateOptions& options,
                                SnapshotSetPtr previous) {
  return std::make_shared<SnapshotSet>(std::move(catalog), options,
                                       std::move(previous));
}

SnapshotSetPtr BuildSnapshotSet(const CatalogSnapshot& catalog,
                                const TranslateOptions& options,
                                SnapshotSetPtr previous) {
  return BuildSnapshotSet(std::make_shared<const CatalogSnapshot>(catalog),
                          options, std::move(previous));
}

}  // namespace attache
