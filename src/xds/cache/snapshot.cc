#include "xds/cache/snapshot.h"

namespace attache {
namespace {

template <typename Message>
void AddAll(ResourceType type, const std::vector<Message>& messages,
            const ViewSnapshot* previous, ViewSnapshot* out,
            const std::string& (Message::*name)() const) {
  ResourceMap& target = out->resources[Index(type)];
  for (const Message& message : messages) {
    ResourcePtr resource = MakeResource(type, (message.*name)(), message);
    if (previous != nullptr) {
      const ResourceMap& old = previous->Of(type);
      auto it = old.find(resource->name);
      if (it != old.end() && it->second->version == resource->version) {
        resource = it->second;
      }
    }
    target.emplace(resource->name, std::move(resource));
  }
}

}  // namespace

ViewSnapshotPtr BuildViewSnapshot(uint64_t generation,
                                  const TranslatedResources& translated,
                                  const ViewSnapshot* previous) {
  auto snapshot = std::make_shared<ViewSnapshot>();
  snapshot->generation = generation;
  AddAll(ResourceType::kCluster, translated.clusters, previous, snapshot.get(),
         &envoy::config::cluster::v3::Cluster::name);
  AddAll(ResourceType::kEndpoint, translated.endpoints, previous,
         snapshot.get(),
         &envoy::config::endpoint::v3::ClusterLoadAssignment::cluster_name);
  AddAll(ResourceType::kListener, translated.listeners, previous,
         snapshot.get(), &envoy::config::listener::v3::Listener::name);
  AddAll(ResourceType::kRoute, translated.routes, previous, snapshot.get(),
         &envoy::config::route::v3::RouteConfiguration::name);
  return snapshot;
}

SnapshotSetPtr BuildSnapshotSet(const CatalogSnapshot& catalog,
                                const TranslateOptions& options,
                                const SnapshotSet* previous) {
  auto set = std::make_shared<SnapshotSet>();
  set->generation = catalog.generation;
  for (Flavor flavor : kAllFlavors) {
    const ViewSnapshot* before =
        previous != nullptr ? previous->For(flavor).get() : nullptr;
    set->views[static_cast<size_t>(flavor)] = BuildViewSnapshot(
        catalog.generation, Translate(catalog, options, flavor), before);
  }
  return set;
}

}  // namespace attache
