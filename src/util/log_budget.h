#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace attache {

// A budget of log lines per time window, for lines a client can cause
// (connects, NACKs, protocol errors, refused connections): within a window
// the first `per_window` lines pass, the rest are only counted, and the
// first line of a later window learns how many were held back. Thread-safe.
class LogBudget {
 public:
  using Clock = std::chrono::steady_clock;

  LogBudget(int per_window, Clock::duration window);

  struct Decision {
    bool log = false;         // log this line at its own level
    uint64_t suppressed = 0;  // lines held back in earlier windows, to report
  };
  Decision Take(Clock::time_point now = Clock::now());

  Clock::duration window() const { return window_; }

 private:
  const int per_window_;
  const Clock::duration window_;
  std::mutex mu_;
  Clock::time_point window_start_{};
  bool started_ = false;
  int in_window_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace attache
