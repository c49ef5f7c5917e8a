#pragma once

#include <cstdint>
#include <vector>

#include "catalog/model.h"

namespace attache {

// What a registry source knows of one service: the endpoints it serves for
// it, and the guard against a registry that suddenly answers "no hosts"
// (a half-restarted registry or a lost table must not drain a service).
class RegistryService {
 public:
  enum class Outcome {
    kUnchanged,  // the answer says what is served already
    kApplied,    // the served endpoints changed
    kHeldEmpty,  // an unconfirmed empty answer; the old endpoints stay
  };

  // confirm_empty: how many empty answers in a row empty a service that had
  // endpoints (1 empties it at the first one).
  explicit RegistryService(uint32_t confirm_empty)
      : confirm_empty_(confirm_empty) {}

  Outcome Accept(std::vector<Endpoint> endpoints);

  // True once an answer was accepted; before that the service is not served.
  bool known() const { return known_; }
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  // Empty answers in a row that were held back.
  uint32_t empty_streak() const { return empty_streak_; }

 private:
  const uint32_t confirm_empty_;
  bool known_ = false;
  uint32_t empty_streak_ = 0;
  std::vector<Endpoint> endpoints_;
};

}  // namespace attache
