#include "catalog/catalog.h"

#include <set>
#include <utility>

namespace attache {

std::string_view SourceStateName(SourceStatus::State state) {
  switch (state) {
    case SourceStatus::State::kStarting:
      return "starting";
    case SourceStatus::State::kSynced:
      return "synced";
    case SourceStatus::State::kStale:
      return "stale";
  }
  return "unknown";
}

Catalog::Catalog(const std::vector<std::string>& source_names)
    : current_(std::make_shared<CatalogSnapshot>()) {
  for (const auto& name : source_names) {
    status_[name] = SourceStatus{};
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
      if (!target.settings.failover) {
        target.settings.failover = service.settings.failover;
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

Catalog::ChangeListener Catalog::RebuildLocked() {
  ServiceMap merged = Merge(by_source_);
  if (merged == current_->services) {
    return nullptr;
  }
  auto next = std::make_shared<CatalogSnapshot>();
  next->generation = current_->generation + 1;
  next->services = std::move(merged);
  current_ = std::move(next);
  return listener_;
}

void Catalog::Update(const std::string& source, ServiceMap services,
                     Freshness freshness) {
  ChangeListener listener;
  {
    std::lock_guard lock(mu_);
    SourceStatus& status = status_[source];
    if (freshness == Freshness::kPartial) {
      if (status.expired) {
        return;  // withdrawn until the whole source is back
      }
    } else {
      status.state = SourceStatus::State::kSynced;
      status.synced_once = true;
      status.expired = false;
      status.last_sync = std::chrono::system_clock::now();
    }
    status.attempted = true;
    ++status.updates;
    by_source_[source] = std::move(services);
    listener = RebuildLocked();
  }
  if (listener) {
    listener();
  }
}

void Catalog::ReportError(const std::string& source,
                          const std::string& message) {
  std::lock_guard lock(mu_);
  SourceStatus& status = status_[source];
  status.attempted = true;
  ++status.errors;
  status.last_error = message;
  if (status.synced_once && status.state != SourceStatus::State::kStale) {
    status.state = SourceStatus::State::kStale;
    status.stale_since = std::chrono::steady_clock::now();
  }
}

void Catalog::ExpireStale(
    const std::map<std::string, std::chrono::milliseconds>& max_staleness) {
  ChangeListener listener;
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    bool changed = false;
    for (auto& [name, status] : status_) {
      auto limit = max_staleness.find(name);
      if (limit == max_staleness.end() || limit->second.count() == 0 ||
          status.state != SourceStatus::State::kStale || status.expired ||
          now - status.stale_since < limit->second) {
        continue;
      }
      status.expired = true;
      changed = by_source_.erase(name) > 0 || changed;
    }
    if (changed) {
      listener = RebuildLocked();
    }
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
  for (const auto& [name, status] : status_) {
    if (!status.synced_once) {
      return false;
    }
  }
  return true;
}

bool Catalog::AllAttempted() const {
  std::lock_guard lock(mu_);
  for (const auto& [name, status] : status_) {
    if (!status.attempted) {
      return false;
    }
  }
  return true;
}

std::map<std::string, SourceStatus> Catalog::Sources() const {
  std::lock_guard lock(mu_);
  return status_;
}

void Catalog::SetChangeListener(ChangeListener listener) {
  std::lock_guard lock(mu_);
  listener_ = std::move(listener);
}

}  // namespace attache
