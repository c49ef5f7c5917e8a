#include "util/log_budget.h"

#include <utility>

namespace attache {

LogBudget::LogBudget(int per_window, Clock::duration window)
    : per_window_(per_window), window_(window) {}

LogBudget::Decision LogBudget::Take(Clock::time_point now) {
  std::lock_guard lock(mu_);
  Decision decision;
  if (!started_ || now - window_start_ >= window_) {
    started_ = true;
    window_start_ = now;
    in_window_ = 0;
    decision.suppressed = std::exchange(suppressed_, 0);
  }
  decision.log = in_window_ < per_window_;
  if (decision.log) {
    ++in_window_;
  } else {
    ++suppressed_;
  }
  return decision;
}

}  // namespace attache
