#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "catalog/catalog.h"
#include "config/config.h"
#include "sources/registry/registry_client.h"
#include "sources/registry/registry_response.h"
#include "sources/registry/registry_service.h"
#include "sources/source.h"

namespace attache {

// The legacy registration API (Lyft's `discovery`, Envoy's v1 SDS), polled.
// The catalog gets the whole state only after a round in which every service
// answered; a round with a failure marks the source stale and changes
// nothing, so the last good endpoints keep serving. An unreachable registry
// is never fatal, not even at start-up.
class RegistrySource final : public Source {
 public:
  RegistrySource(std::string name, RegistrySourceConfig config,
                 Catalog* catalog);
  ~RegistrySource() override;
  RegistrySource(const RegistrySource&) = delete;
  RegistrySource& operator=(const RegistrySource&) = delete;

  const std::string& name() const override { return name_; }
  // One round, synchronously; reports failures to the catalog, never throws
  // for them. attache listens only after it, so a registry that does not
  // answer at all costs one timeout here (the rest of its services are left
  // to the polling thread), not one per few services: with a hundred
  // services that would be a minute, and a liveness probe kills the pod.
  void LoadInitial() override;
  void Start() override;
  // Returns promptly even while a request hangs. Final: no Start after it.
  void Stop() override;

  // Fetches every service once and reports to the catalog.
  void PollOnce() { Round(0); }

  uint64_t rounds() const { return rounds_; }
  uint64_t failed_fetches() const { return failed_fetches_; }
  uint64_t skipped_hosts() const { return skipped_hosts_; }
  uint64_t held_empty() const { return held_empty_; }
  uint64_t held_removals() const { return held_removals_; }

 private:
  struct Tracked {
    explicit Tracked(RemovalGuard guard) : state(guard) {}
    RegistryService state;
    // What was last logged, so that a registry that stays broken is
    // reported once and not on every round.
    std::string last_error;
    std::vector<std::string> last_problems;
  };

  void Take(Tracked& tracked, const std::string& service,
            RegistryAnswer answer);
  void NoteFailure(Tracked& tracked, const std::string& service,
                   const std::string& error);
  // give_up_after: as RegistryClient::FetchAll.
  void Round(size_t give_up_after);
  ServiceMap Served() const;
  bool Stopping();
  void Poll();

  const std::string name_;
  const RegistrySourceConfig config_;
  const std::vector<std::string> services_;  // configured, duplicates removed
  Catalog* const catalog_;
  RegistryClient client_;

  std::mutex round_mu_;           // one round at a time
  std::vector<Tracked> tracked_;  // parallel to services_
  bool published_ = false;        // the catalog holds published_map_
  ServiceMap published_map_;

  std::mutex stop_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;

  std::atomic<uint64_t> rounds_{0};
  std::atomic<uint64_t> failed_fetches_{0};
  std::atomic<uint64_t> skipped_hosts_{0};
  std::atomic<uint64_t> held_empty_{0};
  std::atomic<uint64_t> held_removals_{0};
};

}  // namespace attache
