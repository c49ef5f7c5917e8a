#include "util/log_budget.h"

#include <gtest/gtest.h>

namespace attache {
namespace {

using std::chrono::seconds;

TEST(LogBudget, PassesABudgetPerWindowAndReportsWhatItHeldBack) {
  LogBudget budget(2, seconds(10));
  const LogBudget::Clock::time_point start{seconds(100)};
  EXPECT_TRUE(budget.Take(start).log);
  EXPECT_TRUE(budget.Take(start + seconds(1)).log);
  for (int i = 0; i < 5; ++i) {
    const auto decision = budget.Take(start + seconds(2));
    EXPECT_FALSE(decision.log);
    EXPECT_EQ(decision.suppressed, 0U);
  }
  // A new window: the line passes, and learns of the five held back.
  const auto next = budget.Take(start + seconds(10));
  EXPECT_TRUE(next.log);
  EXPECT_EQ(next.suppressed, 5U);
  EXPECT_EQ(budget.Take(start + seconds(11)).suppressed, 0U);
}

}  // namespace
}  // namespace attache
