#include "xds/server/xds_metrics.h"

#include <cctype>
#include <string>

#include "metrics/registry.h"

namespace attache {

XdsMetrics& XdsMetrics::Get() {
  static auto* metrics = new XdsMetrics();  // lives until exit
  return *metrics;
}

XdsMetrics::XdsMetrics() {
  auto& registry = MetricsRegistry();
  auto& pushes = prometheus::BuildCounter()
                     .Name("attache_xds_pushes_total")
                     .Help("xDS responses sent, by resource type.")
                     .Register(registry);
  auto& nacks = prometheus::BuildCounter()
                    .Name("attache_xds_nacks_total")
                    .Help("xDS responses clients rejected, by resource type.")
                    .Register(registry);
  for (ResourceType type : kAllResourceTypes) {
    std::string label(ShortName(type));
    for (char& c : label) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    pushes_[Index(type)] = &pushes.Add({{"type", label}});
    nacks_[Index(type)] = &nacks.Add({{"type", label}});
  }
  auto& rejected =
      prometheus::BuildCounter()
          .Name("attache_xds_rejected_requests_total")
          .Help(
              "xDS streams ended because a client broke the protocol or a "
              "limit, by reason.")
          .Register(registry);
  for (size_t i = 0; i < kRejectReasonCount; ++i) {
    rejected_[i] = &rejected.Add(
        {{"reason",
          std::string(RejectReasonName(static_cast<RejectReason>(i)))}});
  }
  push_seconds_ =
      &prometheus::BuildHistogram()
           .Name("attache_xds_push_duration_seconds")
           .Help(
               "Time from queueing an xDS response on a stream until gRPC "
               "finished writing it.")
           .Register(registry)
           .Add({}, prometheus::Histogram::BucketBoundaries{
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                        0.25, 0.5, 1, 2.5, 5, 10});
}

}  // namespace attache
