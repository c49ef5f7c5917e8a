#include "sources/registry/registry_service.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

namespace attache {
namespace {

using Key = std::pair<std::string, uint32_t>;

std::set<Key> Keys(const std::vector<Endpoint>& endpoints) {
  std::set<Key> keys;
  for (const Endpoint& endpoint : endpoints) {
    keys.emplace(endpoint.address, endpoint.port);
  }
  return keys;
}

}  // namespace

bool RegistryService::MassRemoval(const std::vector<Endpoint>& answer) const {
  const std::vector<Endpoint>& before = baseline_ ? *baseline_ : endpoints_;
  if (guard_.window.count() == 0 || before.empty() || answer.empty()) {
    return false;
  }
  const std::set<Key> kept = Keys(answer);
  const size_t removed =
      std::count_if(before.begin(), before.end(), [&kept](const Endpoint& e) {
        return !kept.contains({e.address, e.port});
      });
  return removed * 100 > before.size() * guard_.max_removal_percent;
}

RegistryService::Outcome RegistryService::Accept(
    std::vector<Endpoint> endpoints, Clock::time_point now) {
  const bool first = !known_;
  known_ = true;
  // Emptying is what the first guard is about; a service never seen, or one
  // that had nothing anyway, has nothing to lose.
  if (endpoints.empty() && !endpoints_.empty()) {
    ++empty_streak_;
    if (empty_streak_ < guard_.confirm_empty) {
      return Outcome::kHeldEmpty;
    }
  }
  empty_streak_ = 0;
  if (MassRemoval(endpoints)) {
    if (!baseline_) {
      baseline_ = endpoints_;
      held_since_ = now;
    }
    if (now - held_since_ < guard_.window) {
      // Serve what the answer says plus what it would remove.
      std::vector<Endpoint> served = endpoints;
      const std::set<Key> listed = Keys(endpoints);
      held_back_ = 0;
      for (const Endpoint& endpoint : *baseline_) {
        if (!listed.contains({endpoint.address, endpoint.port})) {
          served.push_back(endpoint);
          ++held_back_;
        }
      }
      if (served != endpoints_) {
        endpoints_ = std::move(served);
      }
      return Outcome::kHeldRemoval;
    }
  }
  // Confirmed over the window, or no mass removal (any more).
  baseline_.reset();
  held_back_ = 0;
  if (!first && endpoints == endpoints_) {
    return Outcome::kUnchanged;
  }
  endpoints_ = std::move(endpoints);
  return Outcome::kApplied;
}

}  // namespace attache
