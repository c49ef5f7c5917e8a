#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace attache {

// The conventional process_* figures (CPU, memory, file descriptors, start
// time, threads), read from /proc when scraped.
std::vector<prometheus::MetricFamily> ProcessMetrics();

}  // namespace attache
