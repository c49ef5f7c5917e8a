#include "catalog/stale_expiry.h"

#include <gtest/gtest.h>

#include <thread>

namespace attache {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

ServiceMap OneService(const std::string& origin) {
  Endpoint endpoint;
  endpoint.address = "10.0.0.1";
  endpoint.port = 80;
  endpoint.origin = origin;
  return {{"echo", Service{{}, {endpoint}}}};
}

TEST(StaleExpiry, NextExpiryIsTheStaleSourcesDeadline) {
  Catalog catalog({"k8s", "file"});
  catalog.Update("k8s", OneService("k8s"));
  const std::map<std::string, milliseconds> limits = {
      {"k8s", milliseconds(1'500)}, {"file", milliseconds(0)}};
  EXPECT_FALSE(catalog.NextExpiry(limits));  // nothing stale
  catalog.ReportError("k8s", "down");
  const auto stale_since = catalog.Sources().at("k8s").stale_since;
  ASSERT_TRUE(catalog.NextExpiry(limits));
  EXPECT_EQ(*catalog.NextExpiry(limits), stale_since + milliseconds(1'500));
  catalog.ReportError("file", "never synced: never stale");
  EXPECT_EQ(*catalog.NextExpiry(limits), stale_since + milliseconds(1'500));
  std::this_thread::sleep_for(milliseconds(2));  // past a 1 ms limit
  catalog.ExpireStale({{"k8s", milliseconds(1)}});
  EXPECT_FALSE(catalog.NextExpiry(limits));  // expired already
}

// The thread sleeps with no deadline at all until a source turns stale: if
// it were not woken, the endpoints would never leave.
TEST(StaleExpiry, WithdrawsAtTheDeadlineOfASourceThatTurnedStaleLater) {
  Catalog catalog({"k8s"});
  catalog.Update("k8s", OneService("k8s"));
  StaleExpiry expiry(&catalog, {{"k8s", milliseconds(300)}});
  std::this_thread::sleep_for(milliseconds(50));  // let it go to sleep first
  const auto start = steady_clock::now();
  catalog.ReportError("k8s", "down");
  while (!catalog.Current()->services.empty() &&
         steady_clock::now() - start < std::chrono::seconds(20)) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  const auto took = steady_clock::now() - start;
  EXPECT_TRUE(catalog.Current()->services.empty());
  EXPECT_GE(took, milliseconds(300));  // never before its deadline
  EXPECT_TRUE(catalog.Sources().at("k8s").expired);
}

TEST(StaleExpiry, NoLimitNoThread) {
  Catalog catalog({"k8s"});
  catalog.Update("k8s", OneService("k8s"));
  {
    StaleExpiry expiry(&catalog, {{"k8s", milliseconds(0)}});
    catalog.ReportError("k8s", "down");
  }
  EXPECT_FALSE(catalog.Current()->services.empty());
}

}  // namespace
}  // namespace attache
