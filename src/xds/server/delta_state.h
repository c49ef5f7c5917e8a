#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/cache/snapshot.h"
#include "xds/server/quiet_mark.h"
#include "xds/server/stream_types.h"

namespace attache {

// What one incremental stream knows about one resource type.
struct DeltaTypeState {
  bool requested = false;
  bool wildcard = false;
  std::set<std::string, std::less<>> names;  // explicit subscriptions

  // What the client holds: name -> version (what it was sent, or what it
  // listed in initial_resource_versions). An empty version: it holds one,
  // but must be sent the current one again.
  std::map<std::string, std::string, std::less<>> held;
  // Subscribed names the client was told do not exist; told again only after
  // they appeared or were subscribed again.
  std::set<std::string, std::less<>> told_absent;
  // Names to list in removed_resources in the next response (a wildcard
  // client that dropped an explicit name the wildcard does not cover).
  std::set<std::string, std::less<>> must_remove;
  QuietMark quiet;  // cleared by every request and response of the type
  // The map the response in flight sent everything of; becomes `quiet` when
  // the client ACKs it.
  QuietMark answered;
  bool force_response = false;  // answer the first request even if empty
  // Names to send on the type's first request whatever the client lists in
  // initial_resource_versions: load assignments of clusters that changed
  // before the client re-subscribed to EDS (Envoy warms such a cluster and
  // waits for its assignment).
  std::set<std::string, std::less<>> resend_on_first;

  std::string inflight_nonce;  // non-empty while a response awaits ACK/NACK
  // The resources it carries (shared, not copied), and the versions the
  // client held before of those it already had: a NACK puts them back.
  std::vector<ResourcePtr> inflight;
  std::map<std::string, std::string, std::less<>> inflight_replaced;
  // Versions the client rejected: not sent again.
  std::map<std::string, std::string, std::less<>> rejected_versions;
  // Resources whose last version sent was NACKed: the client kept an older
  // one, so heartbeats must not claim the newer version.
  std::set<std::string, std::less<>> rejected_names;
  std::string last_nonce;
  std::string last_version_info;
  std::string acked_version;
  bool rejected = false;  // the last response was NACKed
  uint64_t responses = 0;
  uint64_t acks = 0;
  uint64_t nacks = 0;
  std::optional<NackRecord> last_nack;
};

// One DeltaDiscoveryResponse to send, referring to shared resource bytes.
struct PendingDeltaResponse {
  ResourceType type;
  std::string system_version_info;
  std::string nonce;
  std::vector<ResourcePtr> resources;
  std::vector<std::string> removed;
  bool heartbeat = false;  // resources without bodies, to refresh TTLs
  // Set when `resources` are all of this map, in order (see PendingResponse).
  ResourceMapPtr whole = nullptr;
};

// The incremental protocol of one stream, without any I/O, following
// shared/xds-checklist.md section C. Like SotwState: at most one response
// per type in flight, ADS order make-before-break, routes held back while
// the clusters they need are unconfirmed.
class DeltaState {
 public:
  explicit DeltaState(std::optional<ResourceType> only_type = std::nullopt)
      : only_type_(only_type) {}

  RequestOutcome OnRequest(
      const envoy::service::discovery::v3::DeltaDiscoveryRequest& request);
  std::vector<PendingDeltaResponse> Poll(const ViewSnapshot& snapshot);
  // Heartbeats for every resource the client holds of the types that are not
  // awaiting an answer: each refreshes the resource's TTL at the client.
  std::vector<PendingDeltaResponse> Heartbeats(const ViewSnapshot& snapshot);

  const DeltaTypeState& Of(ResourceType type) const {
    return types_[Index(type)];
  }

 private:
  struct Candidate {
    ResourceType type;
    std::vector<ResourcePtr> resources;
    std::vector<std::string> removed;
    bool complete = true;  // false: more to send from the same map
  };

  void Subscribe(
      DeltaTypeState& state,
      const envoy::service::discovery::v3::DeltaDiscoveryRequest& request,
      bool first);
  // With `only`, looks at those names alone (the others are known to hold
  // nothing new).
  std::optional<Candidate> Compute(
      ResourceType type, const ViewSnapshot& snapshot, bool allow_removals,
      const std::vector<std::string>* only = nullptr) const;
  // True when `snapshot` holds nothing new for the type (see QuietMark).
  bool Quiet(ResourceType type, const ViewSnapshot& snapshot) const;
  // Compute, skipped when quiet; remembers when there was nothing to send
  // (only a computation that allowed removals can tell).
  std::optional<Candidate> Next(ResourceType type, const ViewSnapshot& snapshot,
                                bool allow_removals);
  bool HasWork(ResourceType type, const ViewSnapshot& snapshot) const;
  PendingDeltaResponse Commit(Candidate candidate,
                              const ViewSnapshot& snapshot);
  DeltaTypeState& Mutable(ResourceType type) { return types_[Index(type)]; }

  std::optional<ResourceType> only_type_;
  std::array<DeltaTypeState, kResourceTypeCount> types_;
  uint64_t nonce_counter_ = 0;
};

}  // namespace attache
