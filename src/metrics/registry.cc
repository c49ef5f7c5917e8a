#include "metrics/registry.h"

#include <prometheus/text_serializer.h>

#include <sstream>
#include <utility>

namespace attache {

prometheus::Registry& MetricsRegistry() {
  static auto* registry = new prometheus::Registry();  // lives until exit
  return *registry;
}

std::string MetricsText(std::vector<prometheus::MetricFamily> extra) {
  std::vector<prometheus::MetricFamily> families = MetricsRegistry().Collect();
  for (auto& family : extra) {
    families.push_back(std::move(family));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

prometheus::MetricFamily GaugeFamily(std::string name, std::string help) {
  return {std::move(name), std::move(help), prometheus::MetricType::Gauge, {}};
}

prometheus::MetricFamily CounterFamily(std::string name, std::string help) {
  return {
      std::move(name), std::move(help), prometheus::MetricType::Counter, {}};
}

void AddSample(prometheus::MetricFamily* family,
               std::vector<prometheus::ClientMetric::Label> labels,
               double value) {
  prometheus::ClientMetric sample;
  sample.label = std::move(labels);
  if (family->type == prometheus::MetricType::Counter) {
    sample.counter.value = value;
  } else {
    sample.gauge.value = value;
  }
  family->metric.push_back(std::move(sample));
}

}  // namespace attache
