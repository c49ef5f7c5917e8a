#include "app/pipeline.h"

#include <spdlog/spdlog.h>

namespace attache {

Pipeline::Pipeline(Catalog* catalog, TranslateOptions options,
                   std::chrono::milliseconds debounce,
                   std::chrono::milliseconds max_delay)
    : catalog_(catalog),
      options_(std::move(options)),
      debounce_(debounce),
      max_delay_(max_delay) {}

Pipeline::~Pipeline() { Stop(); }

SnapshotSetPtr Pipeline::BuildNow() {
  const auto catalog = catalog_->Current();
  if (last_ && last_->generation() == catalog->generation) {
    return last_;
  }
  last_ = BuildSnapshotSet(catalog, options_, last_);
  return last_;
}

void Pipeline::Start(Publish publish) {
  publish_ = std::move(publish);
  thread_ = std::thread([this] { Run(); });
}

void Pipeline::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Pipeline::Notify() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
    last_change_ = std::chrono::steady_clock::now();
  }
  wake_.notify_all();
}

void Pipeline::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return dirty_ || stopping_; });
    if (stopping_) {
      return;
    }
    const auto first_change = std::chrono::steady_clock::now();
    // Wait for a quiet period, bounded by max_delay since the first change.
    for (;;) {
      const auto quiet_at = last_change_ + debounce_;
      const auto deadline = std::min(quiet_at, first_change + max_delay_);
      if (std::chrono::steady_clock::now() >= deadline || stopping_) {
        break;
      }
      wake_.wait_until(lock, deadline);
    }
    if (stopping_) {
      return;
    }
    dirty_ = false;
    lock.unlock();
    const auto started = std::chrono::steady_clock::now();
    const SnapshotSetPtr snapshots = BuildNow();
    // Publishing translates every view a connected client needs.
    publish_(snapshots);
    snapshots->ForgetPrevious();
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    spdlog::debug(
        "catalog generation {}: {} services, {} views translated and "
        "published in {} us",
        snapshots->generation(), snapshots->catalog().services.size(),
        snapshots->BuiltViews().size(), took.count());
    lock.lock();
  }
}

}  // namespace attache
