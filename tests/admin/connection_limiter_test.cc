#include "admin/connection_limiter.h"

#include <gtest/gtest.h>

namespace attache {
namespace {

using Verdict = ConnectionLimiter::Verdict;

TEST(ConnectionLimiter, CapsEachPeerAndTheTotal) {
  ConnectionLimiter limiter(3, 2);
  limiter.Opened("10.0.0.1");
  EXPECT_EQ(limiter.Check("10.0.0.1"), Verdict::kAdmit);
  limiter.Opened("10.0.0.1");
  EXPECT_EQ(limiter.Check("10.0.0.1"), Verdict::kTooManyFromPeer);
  // Another peer still gets in while the first is at its cap.
  EXPECT_EQ(limiter.Check("10.0.0.2"), Verdict::kAdmit);
  limiter.Opened("10.0.0.2");
  EXPECT_EQ(limiter.Check("10.0.0.3"), Verdict::kTooMany);
  EXPECT_EQ(limiter.open(), 3U);

  limiter.Closed("10.0.0.1");
  EXPECT_EQ(limiter.Check("10.0.0.1"), Verdict::kAdmit);
  EXPECT_EQ(limiter.Check("10.0.0.3"), Verdict::kAdmit);
  // Closing what never opened gives nothing back.
  limiter.Closed("10.9.9.9");
  EXPECT_EQ(limiter.open(), 2U);
}

}  // namespace
}  // namespace attache
