#include "catalog/stale_expiry.h"

#include <algorithm>
#include <utility>

namespace attache {

StaleExpiry::StaleExpiry(
    Catalog* catalog,
    std::map<std::string, std::chrono::milliseconds> max_staleness)
    : catalog_(catalog), max_staleness_(std::move(max_staleness)) {
  const bool any =
      std::any_of(max_staleness_.begin(), max_staleness_.end(),
                  [](const auto& entry) { return entry.second.count() > 0; });
  if (!any) {
    return;  // nothing ever expires: no thread
  }
  catalog_->SetStaleListener([this] {
    std::lock_guard lock(mu_);
    woken_ = true;
    wake_.notify_one();
  });
  thread_ = std::thread([this] { Run(); });
}

StaleExpiry::~StaleExpiry() {
  if (!thread_.joinable()) {
    return;
  }
  catalog_->SetStaleListener(nullptr);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void StaleExpiry::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    woken_ = false;
    lock.unlock();
    catalog_->ExpireStale(max_staleness_);
    const auto next = catalog_->NextExpiry(max_staleness_);
    lock.lock();
    const auto ready = [this] { return stopping_ || woken_; };
    if (next) {
      wake_.wait_until(lock, *next, ready);
    } else {
      wake_.wait(lock, ready);
    }
  }
}

}  // namespace attache
