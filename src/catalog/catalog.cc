#include "catalog/catalog.h"

#include <optional>
#include <set>
#include <string_view>
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

namespace {

// Merges what several sources report under one name, in source order; a
// service only one source reports is that source's very object.
SharedService MergeParts(const std::vector<const SharedService*>& parts) {
  if (parts.size() == 1) {
    return *parts.front();
  }
  Service merged;
  std::set<std::pair<std::string_view, uint32_t>> seen;
  for (const SharedService* part : parts) {
    ServiceSettings& settings = merged.settings;
    const ServiceSettings& given = (*part)->settings;
    if (!settings.connect_timeout) {
      settings.connect_timeout = given.connect_timeout;
    }
    if (!settings.lb_policy) {
      settings.lb_policy = given.lb_policy;
    }
    if (!settings.failover) {
      settings.failover = given.failover;
    }
    settings.resilience = Overlay(settings.resilience, given.resilience);
    for (const Endpoint& endpoint : (*part)->endpoints) {
      if (seen.emplace(endpoint.address, endpoint.port).second) {
        merged.endpoints.push_back(endpoint);
      }
    }
  }
  return {std::move(merged)};
}

// The service `name` merged over every source; nullopt when none has it.
std::optional<SharedService> MergeOne(
    const std::map<std::string, ServiceMap>& by_source, std::string_view name) {
  std::vector<const SharedService*> parts;
  for (const auto& [source, services] : by_source) {
    if (auto it = services.find(name); it != services.end()) {
      parts.push_back(&it->second);
    }
  }
  if (parts.empty()) {
    return std::nullopt;
  }
  return MergeParts(parts);
}

// Adds to *names the names whose service differs between the two maps.
void AddChangedNames(const ServiceMap& before, const ServiceMap& after,
                     std::set<std::string, std::less<>>* names) {
  auto left = before.begin();
  auto right = after.begin();
  while (left != before.end() || right != after.end()) {
    if (right == after.end() ||
        (left != before.end() && left->first < right->first)) {
      names->insert((left++)->first);
    } else if (left == before.end() || right->first < left->first) {
      names->insert((right++)->first);
    } else {
      if (!(left->second == right->second)) {
        names->insert(left->first);
      }
      ++left;
      ++right;
    }
  }
}

}  // namespace

ServiceMap Catalog::Merge(const std::map<std::string, ServiceMap>& by_source) {
  std::map<std::string_view, std::vector<const SharedService*>> parts;
  for (const auto& [source, services] : by_source) {
    for (const auto& [name, service] : services) {
      parts[name].push_back(&service);
    }
  }
  ServiceMap merged;
  for (const auto& [name, of_name] : parts) {
    merged.emplace_hint(merged.end(), name, MergeParts(of_name));
  }
  return merged;
}

Catalog::ChangeListener Catalog::RebuildLocked(
    const std::set<std::string, std::less<>>& names) {
  // Only the named services are merged again; every other one stays the
  // object the current generation holds, and so does a re-merged one that
  // came out equal, so later stages see unchanged services as unchanged by
  // their address alone.
  std::vector<std::pair<const std::string*, std::optional<SharedService>>>
      changes;
  for (const std::string& name : names) {
    std::optional<SharedService> service = MergeOne(by_source_, name);
    const auto it = current_->services.find(name);
    const bool existed = it != current_->services.end();
    if (existed != service.has_value() ||
        (existed && !(it->second == *service))) {
      changes.emplace_back(&name, std::move(service));
    }
  }
  if (changes.empty()) {
    return nullptr;
  }
  auto next = std::make_shared<CatalogSnapshot>();
  next->generation = current_->generation + 1;
  next->services = current_->services;
  for (auto& [name, service] : changes) {
    if (service) {
      next->services.insert_or_assign(*name, std::move(*service));
    } else {
      next->services.erase(*name);
    }
  }
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
    ServiceMap& held = by_source_[source];
    std::set<std::string, std::less<>> changed;
    AddChangedNames(held, services, &changed);
    held = std::move(services);
    listener = RebuildLocked(changed);
  }
  if (listener) {
    listener();
  }
}

void Catalog::ReportError(const std::string& source,
                          const std::string& message) {
  std::function<void()> listener;
  {
    std::lock_guard lock(mu_);
    SourceStatus& status = status_[source];
    status.attempted = true;
    ++status.errors;
    status.last_error = message;
    if (status.synced_once && status.state != SourceStatus::State::kStale) {
      status.state = SourceStatus::State::kStale;
      status.stale_since = std::chrono::steady_clock::now();
      listener = stale_listener_;
    }
  }
  if (listener) {
    listener();
  }
}

std::optional<std::chrono::steady_clock::time_point> Catalog::NextExpiry(
    const std::map<std::string, std::chrono::milliseconds>& max_staleness)
    const {
  std::lock_guard lock(mu_);
  std::optional<std::chrono::steady_clock::time_point> next;
  for (const auto& [name, status] : status_) {
    auto limit = max_staleness.find(name);
    if (limit == max_staleness.end() || limit->second.count() == 0 ||
        status.state != SourceStatus::State::kStale || status.expired) {
      continue;
    }
    const auto deadline = status.stale_since + limit->second;
    if (!next || deadline < *next) {
      next = deadline;
    }
  }
  return next;
}

void Catalog::SetStaleListener(std::function<void()> listener) {
  std::lock_guard lock(mu_);
  stale_listener_ = std::move(listener);
}

void Catalog::ReportRejected(const std::string& source,
                             const std::string& message) {
  std::lock_guard lock(mu_);
  SourceStatus& status = status_[source];
  ++status.rejected;
  status.last_rejected = message;
}

void Catalog::ExpireStale(
    const std::map<std::string, std::chrono::milliseconds>& max_staleness) {
  ChangeListener listener;
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    std::set<std::string, std::less<>> changed;
    for (auto& [name, status] : status_) {
      auto limit = max_staleness.find(name);
      if (limit == max_staleness.end() || limit->second.count() == 0 ||
          status.state != SourceStatus::State::kStale || status.expired ||
          now - status.stale_since < limit->second) {
        continue;
      }
      status.expired = true;
      if (auto held = by_source_.find(name); held != by_source_.end()) {
        AddChangedNames(held->second, {}, &changed);
        by_source_.erase(held);
      }
    }
    listener = RebuildLocked(changed);
  }
  if (listener) {
    listener();
  }
}

std::shared_ptr<const CatalogSnapshot> Catalog::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::vector<std::string> Catalog::NotYet(Readiness readiness) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, status] : status_) {
    if (readiness == Readiness::kSynced ? !status.synced_once
                                        : !status.attempted) {
      names.push_back(name);
    }
  }
  return names;
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
