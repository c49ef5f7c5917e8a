#pragma once

#include <chrono>
#include <random>

namespace attache {

// Exponential backoff with full jitter: each failure doubles the ceiling
// (from `first` up to `max`) and the wait is uniform below it, so that many
// replicas do not reconnect to a recovering API server in step.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds first, std::chrono::milliseconds max)
      : first_(first), max_(max), ceiling_(first) {}

  std::chrono::milliseconds Next() {
    std::uniform_int_distribution<int64_t> pick(ceiling_.count() / 2,
                                                ceiling_.count());
    const std::chrono::milliseconds wait(pick(random_));
    ceiling_ = std::min(ceiling_ * 2, max_);
    return wait;
  }
  void Reset() { ceiling_ = first_; }

 private:
  std::chrono::milliseconds first_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds ceiling_;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace attache
