#include "xds/cache/snapshot.h"

namespace attache {
namespace {

const std::string& NameOf(const envoy::config::cluster::v3::Cluster& m) {
  return m.name();
}
const std::string& NameOf(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& m) {
  return m.cluster_name();
}
const std::string& NameOf(const envoy::config::listener::v3::Listener& m) {
  return m.name();
}
const std::string& NameOf(
    const envoy::config::route::v3::RouteConfiguration& m) {
  return m.name();
}

ResourcePtr Reused(ResourcePtr resource, const ResourceMap* previous) {
  if (previous != nullptr) {
    auto it = previous->find(resource->name);
    if (it != previous->end() && it->second->version == resource->version) {
      return it->second;
    }
  }
  return resource;
}

template <typename Message>
void AddAll(ResourceType type, const std::vector<Message>& messages,
            const ResourceMap* previous, ResourceMap* out) {
  for (const Message& message : messages) {
    ResourcePtr resource =
        Reused(MakeResource(type, NameOf(message), message), previous);
    out->insert_or_assign(resource->name, std::move(resource));
  }
}

template <typename Message>
ResourceMapPtr MapOf(ResourceType type, const std::vector<Message>& messages,
                     const ResourceMap* previous) {
  auto map = std::make_shared<ResourceMap>();
  AddAll(type, messages, previous, map.get());
  return map;
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

ResourceMapPtr SnapshotSet::PeekEndpoints(const ClientPlace& place) const {
  return Peek(mu_, endpoints_, place);
}

std::shared_ptr<const SnapshotSet::FlavorMaps> SnapshotSet::Flavored(
    Flavor flavor) const {
  auto slot = SlotOf(mu_, flavors_, flavor);
  std::lock_guard lock(slot->mu);
  if (!slot->value) {
    const auto before = Previous();
    const auto old = before ? before->PeekFlavored(flavor) : nullptr;
    const TranslatedResources translated =
        TranslateFlavor(*catalog_, options_, flavor);
    auto maps = std::make_shared<FlavorMaps>();
    maps->clusters = MapOf(ResourceType::kCluster, translated.clusters,
                           old ? old->clusters.get() : nullptr);
    maps->listeners = MapOf(ResourceType::kListener, translated.listeners,
                            old ? old->listeners.get() : nullptr);
    maps->routes = MapOf(ResourceType::kRoute, translated.routes,
                         old ? old->routes.get() : nullptr);
    slot->value = std::move(maps);
  }
  return slot->value;
}

ResourceMapPtr SnapshotSet::Endpoints(const ClientPlace& place) const {
  auto slot = SlotOf(mu_, endpoints_, place);
  std::lock_guard lock(slot->mu);
  if (slot->value) {
    return slot->value;
  }
  const auto before = Previous();
  ResourceMapPtr old = before ? before->PeekEndpoints(place) : nullptr;
  const ClientPlace nowhere;
  if (!old && before) {
    old = before->PeekEndpoints(nowhere);
  }
  if (place == nowhere) {
    slot->value = MapOf(ResourceType::kEndpoint,
                        TranslateEndpoints(*catalog_, options_, nowhere, false),
                        old.get());
    return slot->value;
  }
  // Start from the place-less assignments and replace those whose policy
  // depends on the place: a flat service is translated once for all places.
  auto map = std::make_shared<ResourceMap>(*Endpoints(nowhere));
  for (const auto& [service_name, service] : catalog_->services) {
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
      resource = Reused(
          MakeResource(ResourceType::kEndpoint, cluster,
                       MakeLoadAssignment(cluster, service, policy, place,
                                          options_.defaults.local_percent)),
          old.get());
      std::lock_guard placed_lock(placed_mu_);
      placed_.emplace(key, resource);
    }
    map->insert_or_assign(cluster, std::move(resource));
  }
  slot->value = std::move(map);
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
    view->resources[Index(ResourceType::kCluster)] = flavored->clusters;
    view->resources[Index(ResourceType::kEndpoint)] = Endpoints(key.place);
    view->resources[Index(ResourceType::kListener)] = flavored->listeners;
    view->resources[Index(ResourceType::kRoute)] = flavored->routes;
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
