#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "catalog/model.h"

namespace attache {

// The merged truth at one moment; immutable once published.
struct CatalogSnapshot {
  uint64_t generation = 0;
  ServiceMap services;
};

// What the catalog knows about one source, for readiness and debug views.
struct SourceStatus {
  enum class State { kStarting, kSynced, kStale };
  State state = State::kStarting;
  bool attempted = false;    // synced or failed at least once
  bool synced_once = false;  // has ever delivered a state
  std::string last_error;
  std::chrono::system_clock::time_point last_sync{};
  std::chrono::steady_clock::time_point stale_since{};
  uint64_t updates = 0;
  uint64_t errors = 0;
  // Settings in the origin's data that were ignored (a bad annotation): the
  // source itself is fine, so this does not make it stale.
  uint64_t rejected = 0;
  std::string last_rejected;
  bool expired = false;  // stale past max_staleness: endpoints withdrawn
};
std::string_view SourceStateName(SourceStatus::State state);

// Merges what every source reports into one ServiceMap. Sources replace their
// whole contribution at once, so a source's last good state stays until it
// reports a new one.
class Catalog {
 public:
  using ChangeListener = std::function<void()>;

  explicit Catalog(const std::vector<std::string>& source_names);

  // kComplete: the source reached its whole origin; it is synced now.
  // kPartial: part of the origin answered; the rest is the last good state,
  // so the source stays stale (and its staleness clock keeps running).
  enum class Freshness { kComplete, kPartial };

  // Replaces everything `source` reported before. Calls the change listener
  // when the merged result changed.
  void Update(const std::string& source, ServiceMap services,
              Freshness freshness = Freshness::kComplete);

  // The source cannot reach its origin: its last good state keeps serving,
  // marked stale, until it reports again (or max staleness expires it).
  void ReportError(const std::string& source, const std::string& message);
  // Counts settings the source had to ignore; its state stays as it is.
  void ReportRejected(const std::string& source, const std::string& message);
  // Withdraws the endpoints of sources stale for longer than their limit
  // (zero: no limit). StaleExpiry calls it at NextExpiry.
  void ExpireStale(
      const std::map<std::string, std::chrono::milliseconds>& max_staleness);
  // When the next stale source reaches its limit; nullopt: none will.
  std::optional<std::chrono::steady_clock::time_point> NextExpiry(
      const std::map<std::string, std::chrono::milliseconds>& max_staleness)
      const;
  // Called (outside the lock) when a source turns stale.
  void SetStaleListener(std::function<void()> listener);

  std::shared_ptr<const CatalogSnapshot> Current() const;
  // kSynced: the source has reported at least once; kAttempted: it synced or
  // failed its first attempt.
  enum class Readiness { kSynced, kAttempted };
  // The sources not there yet, by name.
  std::vector<std::string> NotYet(Readiness readiness) const;
  bool AllSynced() const { return NotYet(Readiness::kSynced).empty(); }
  bool AllAttempted() const { return NotYet(Readiness::kAttempted).empty(); }
  std::map<std::string, SourceStatus> Sources() const;
  void SetChangeListener(ChangeListener listener);

  // Merges per-source maps (ordered by source name): a service's endpoints
  // are the union over sources; for an address:port reported twice the first
  // source wins, and so does the first source that sets a setting.
  static ServiceMap Merge(const std::map<std::string, ServiceMap>& by_source);

 private:
  // Re-merges the named services after by_source_ changed; returns the
  // listener to call (outside the lock) when the result differs.
  ChangeListener RebuildLocked(const std::set<std::string, std::less<>>& names);

  mutable std::mutex mu_;
  std::map<std::string, ServiceMap> by_source_;
  std::map<std::string, SourceStatus> status_;
  std::shared_ptr<const CatalogSnapshot> current_;
  ChangeListener listener_;
  std::function<void()> stale_listener_;
};

}  // namespace attache
