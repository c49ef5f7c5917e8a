#pragma once

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <string>
#include <vector>

namespace attache {

// The process's metrics registry: counters and histograms that code updates
// as things happen. Figures that are cheaper to read when scraped (source
// states, catalog sizes, process figures) are passed to MetricsText instead.
prometheus::Registry& MetricsRegistry();

// The Prometheus text exposition (format 0.0.4) of the registry and `extra`.
std::string MetricsText(std::vector<prometheus::MetricFamily> extra);

// A gauge or counter family with one sample per label set, for scrape-time
// figures.
prometheus::MetricFamily GaugeFamily(std::string name, std::string help);
prometheus::MetricFamily CounterFamily(std::string name, std::string help);
void AddSample(prometheus::MetricFamily* family,
               std::vector<prometheus::ClientMetric::Label> labels,
               double value);

}  // namespace attache
