#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "catalog/catalog.h"
#include "translate/translate.h"
#include "xds/cache/snapshot.h"

namespace attache {

// Carries catalog changes to the xDS cache: a burst of changes is coalesced
// (quiet for `debounce`, but never longer than `max_delay` after the first),
// translated once per view and published.
class Pipeline {
 public:
  using Publish = std::function<void(SnapshotSetPtr)>;

  Pipeline(Catalog* catalog, TranslateOptions options,
           std::chrono::milliseconds debounce,
           std::chrono::milliseconds max_delay);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Builds the snapshots of the catalog as it is now, synchronously.
  SnapshotSetPtr BuildNow();
  void Start(Publish publish);
  void Stop();
  // Called by the catalog on every change.
  void Notify();

 private:
  void Run();

  Catalog* const catalog_;
  const TranslateOptions options_;
  const std::chrono::milliseconds debounce_;
  const std::chrono::milliseconds max_delay_;
  Publish publish_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool dirty_ = false;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_change_;
  SnapshotSetPtr last_;  // touched only by BuildNow before Start, then Run
  std::thread thread_;
};

}  // namespace attache
