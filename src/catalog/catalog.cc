#include "catalog/catalog.h"

#include <set>
#include <utility>

namespace attache {

Catalog::Catalog(const std::vector<std::string>& source_names)
    : current_(std::make_shared<CatalogSnapshot>()) {
  for (const auto& name : source_names) {
    synced_[name] = false;
  }
}

ServiceMap Catalog::Merge(const std::map<std::string, ServiceMap>& by_source) {
  ServiceMap merged;
  std::map<std::string, std::set<std::pair<std::string, uint32_t>>> seen;
  for (const auto& [source, services] : by_source) {
    for (const auto& [name, service] : services) {
      Service& target = merged[name];
      if (!target.settings.connect_timeout) {
        target.settings.connect_timeout = service.settings.connect_timeout;
      }
      if (!target.settings.lb_policy) {
        target.settings.lb_policy = service.settings.lb_policy;
      }
      auto& addresses = seen[name];
      for (const Endpoint& endpoint : service.endpoints) {
        if (addresses.emplace(endpoint.address, endpoint.port).second) {
          target.endpoints.push_back(endpoint);
        }
      }
    }
  }
  return merged;
}

void Catalog::Update(const std::string& source, ServiceMap services) {
  ChangeListener listener;
  {
    std::lock_guard lock(mu_);
    synced_[source] = true;
    by_source_[source] = std::move(services);
    ServiceMap merged = Merge(by_source_);
    if (merged == current_->services) {
      return;
    }
    auto next = std::make_shared<CatalogSnapshot>();
    next->generation = current_->generation + 1;
    next->services = std::move(merged);
    current_ = std::move(next);
    listener = listener_;
  }
  if (listener) {
    listener();
  }
}

std::shared_ptr<const CatalogSnapshot> Catalog::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

bool Catalog::AllSynced() const {
  std::lock_guard lock(mu_);
  for (const auto& [name, synced] : synced_) {
    if (!synced) {
      return false;
    }
  }
  return true;
}

void Catalog::SetChangeListener(ChangeListener listener) {
  std::lock_guard lock(mu_);
  listener_ = std::move(listener);
}

}  // namespace attache
