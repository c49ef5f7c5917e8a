#pragma once

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <array>
#include <chrono>

#include "xds/cache/resource_type.h"
#include "xds/server/stream_types.h"

namespace attache {

// What the xDS server counts as it works. Every instrument is looked up
// once, so counting on the hot path is one atomic add.
class XdsMetrics {
 public:
  static XdsMetrics& Get();

  // A response of `type` went to the write queue of a stream.
  void Pushed(ResourceType type) { pushes_[Index(type)]->Increment(); }
  void Nacked(ResourceType type) { nacks_[Index(type)]->Increment(); }
  // A stream was ended for a request or a client over a limit.
  void Rejected(RejectReason reason) {
    rejected_[static_cast<size_t>(reason)]->Increment();
  }
  // A response was written, `waited` after it was queued (a slow reader, or
  // earlier responses on the same stream, make this longer).
  void Written(std::chrono::steady_clock::duration waited) {
    push_seconds_->Observe(std::chrono::duration<double>(waited).count());
  }

 private:
  XdsMetrics();

  std::array<prometheus::Counter*, kResourceTypeCount> pushes_{};
  std::array<prometheus::Counter*, kResourceTypeCount> nacks_{};
  std::array<prometheus::Counter*, kRejectReasonCount> rejected_{};
  prometheus::Histogram* push_seconds_ = nullptr;
};

}  // namespace attache
