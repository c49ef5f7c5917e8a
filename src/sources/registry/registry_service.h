#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "catalog/model.h"

namespace attache {

// How a registry source guards a service's endpoints against an answer that
// takes most of them away at once: a registry restarted with an in-memory
// table refills as hosts check in again, and applying a partly refilled
// answer concentrates the whole load on the hosts that came back first
// (Eureka's "self-preservation" is the same idea).
struct RemovalGuard {
  // An empty answer for a service that had endpoints is applied only after
  // this many in a row (1: at once).
  uint32_t confirm_empty = 2;
  // A non-empty answer that removes more than this share (percent) of the
  // served endpoints is held: the removed endpoints stay served (next to any
  // the answer adds) until answers have said so for `window`.
  uint32_t max_removal_percent = 30;
  std::chrono::milliseconds window{30'000};  // zero: no guard
};

// What a registry source knows of one service: the endpoints it serves for
// it, and the guards against a registry that suddenly answers "no hosts" or
// "far fewer hosts". Pure: time is passed in.
class RegistryService {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Outcome {
    kUnchanged,    // the answer says what is served already
    kApplied,      // the served endpoints changed as the answer says
    kHeldEmpty,    // an unconfirmed empty answer; the old endpoints stay
    kHeldRemoval,  // a mass removal within its window; removed ones stay
  };

  explicit RegistryService(RemovalGuard guard) : guard_(guard) {}

  Outcome Accept(std::vector<Endpoint> endpoints,
                 Clock::time_point now = Clock::now());

  // True once an answer was accepted; before that the service is not served.
  bool known() const { return known_; }
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  // Empty answers in a row that were held back.
  uint32_t empty_streak() const { return empty_streak_; }
  // Endpoints served only because the guard holds their removal.
  size_t held_back() const { return held_back_; }

 private:
  // True when `answer` drops more than the allowed share of `baseline_`.
  bool MassRemoval(const std::vector<Endpoint>& answer) const;

  const RemovalGuard guard_;
  bool known_ = false;
  uint32_t empty_streak_ = 0;
  std::vector<Endpoint> endpoints_;
  // While a removal is held: what was served before it, and since when.
  std::optional<std::vector<Endpoint>> baseline_;
  Clock::time_point held_since_{};
  size_t held_back_ = 0;
};

}  // namespace attache
