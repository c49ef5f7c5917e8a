#include <gtest/gtest.h>

#include <string>

#include "metrics/process_metrics.h"
#include "metrics/registry.h"
#include "xds/server/xds_metrics.h"

namespace attache {
namespace {

TEST(MetricsText, ServesRegistryAndScrapeTimeFamilies) {
  XdsMetrics::Get().Nacked(ResourceType::kRoute);
  auto extra = GaugeFamily("attache_test_gauge", "A gauge for this test.");
  AddSample(&extra, {{"source", "east"}}, 3);
  const std::string text = MetricsText({extra});
  EXPECT_NE(text.find("# TYPE attache_xds_nacks_total counter"),
            std::string::npos);
  EXPECT_NE(text.find("attache_xds_nacks_total{type=\"rds\"} "),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE attache_test_gauge gauge"), std::string::npos);
  EXPECT_NE(text.find("attache_test_gauge{source=\"east\"} 3"),
            std::string::npos);
}

TEST(ProcessMetrics, ReadsThisProcess) {
  double rss = 0;
  double fds = 0;
  for (const auto& family : ProcessMetrics()) {
    if (family.name == "process_resident_memory_bytes") {
      rss = family.metric.at(0).gauge.value;
    } else if (family.name == "process_open_fds") {
      fds = family.metric.at(0).gauge.value;
    }
  }
  EXPECT_GT(rss, 1 << 20);
  EXPECT_GE(fds, 3);  // stdin, stdout, stderr at least
}

}  // namespace
}  // namespace attache
