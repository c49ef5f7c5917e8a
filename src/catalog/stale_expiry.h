#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "catalog/catalog.h"

namespace attache {

// Withdraws a stale source's endpoints at its max_staleness deadline, to
// the millisecond: a thread that sleeps until the catalog's next deadline
// and is woken when a source turns stale (a new, maybe earlier deadline).
class StaleExpiry {
 public:
  StaleExpiry(Catalog* catalog,
              std::map<std::string, std::chrono::milliseconds> max_staleness);
  ~StaleExpiry();
  StaleExpiry(const StaleExpiry&) = delete;
  StaleExpiry& operator=(const StaleExpiry&) = delete;

 private:
  void Run();

  Catalog* const catalog_;
  const std::map<std::string, std::chrono::milliseconds> max_staleness_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool woken_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace attache
