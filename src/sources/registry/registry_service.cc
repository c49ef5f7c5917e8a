#include "sources/registry/registry_service.h"

#include <utility>

namespace attache {

RegistryService::Outcome RegistryService::Accept(
    std::vector<Endpoint> endpoints) {
  const bool first = !known_;
  known_ = true;
  // Emptying is what the guard is about; a service never seen, or one
  // that had nothing anyway, has nothing to lose.
  if (endpoints.empty() && !endpoints_.empty()) {
    ++empty_streak_;
    if (empty_streak_ < confirm_empty_) {
      return Outcome::kHeldEmpty;
    }
  }
  empty_streak_ = 0;
  if (!first && endpoints == endpoints_) {
    return Outcome::kUnchanged;
  }
  endpoints_ = std::move(endpoints);
  return Outcome::kApplied;
}

}  // namespace attache
