#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/cache/snapshot.h"
#include "xds/server/quiet_mark.h"
#include "xds/server/stream_types.h"

namespace attache {

// What one stream knows about one resource type.
struct TypeState {
  bool requested = false;  // a request for this type arrived on the stream
  bool wildcard = false;
  bool ever_named = false;  // once a name was sent, empty no longer means '*'
  std::set<std::string, std::less<>> names;

  // LDS/CDS: everything the last response carried. For a wildcard client
  // that is the snapshot's own map, so all of them share one (a per-stream
  // copy of 1,000 clusters costs over 100 KiB a stream).
  ResourceMapPtr last_response;
  // EDS/RDS: everything the client holds, name -> resource version.
  std::map<std::string, std::string, std::less<>> sent;
  // EDS/RDS: a sum of a hash per entry of `sent`; its hex is version_info.
  uint64_t version_sum = 0;
  QuietMark quiet;  // cleared by every request and response of the type
  // The map the response in flight sent everything of; becomes `quiet` when
  // the client answers it.
  QuietMark answered;
  bool force_response = false;        // answer the initial request regardless
  bool subscription_changed = false;  // LDS/CDS answer a changed name list

  std::string inflight_nonce;  // non-empty while a response awaits ACK/NACK
  std::string last_nonce;
  std::string last_version_info;
  std::string acked_version;
  bool rejected = false;  // the last response was NACKed
  uint64_t responses = 0;
  uint64_t acks = 0;
  uint64_t nacks = 0;
  std::optional<NackRecord> last_nack;
  // What the client accepted last (not counting heartbeats): CDS always, as
  // what routes may point at after a NACK; LDS only for clients with TTLs,
  // whose heartbeats refresh this, also after a NACK.
  ResourceMapPtr acked_response;  // LDS/CDS
  // CDS: the last response the client answered, ACK or NACK.
  ResourceMapPtr answered_response;
  // CDS, while the last response is rejected: those of its clusters that a
  // client validating each resource on its own may have rejected, by name
  // (see SuspectRejectedClusters in sotw_state.cc).
  std::vector<ResourcePtr> suspects;
  std::map<std::string, std::string, std::less<>> acked_sent;  // EDS/RDS
  // EDS/RDS: what the response in flight carries; added to acked_sent when
  // the client ACKs it (`sent` also holds what it rejected).
  std::map<std::string, std::string, std::less<>> inflight_sent;
  bool inflight_heartbeat = false;
};

// One DiscoveryResponse to send, referring to shared resource bytes.
struct PendingResponse {
  ResourceType type;
  std::string version_info;
  std::string nonce;
  std::vector<ResourcePtr> resources;
  // Set when `resources` are all of this map, in order: a map many streams
  // send whole is encoded once for all of them (see response_encoder.h).
  ResourceMapPtr whole;
};

// The state-of-the-world protocol of one stream, without any I/O: requests go
// in, responses to send come out of Poll. At most one response per type is in
// flight; the next one carries the newest state once the client answered.
class SotwState {
 public:
  using RequestKind = attache::RequestKind;
  using RequestOutcome = attache::RequestOutcome;

  // `only_type` is set on the per-type services (CDS, EDS, LDS, RDS).
  explicit SotwState(std::optional<ResourceType> only_type = std::nullopt)
      : only_type_(only_type) {}

  RequestOutcome OnRequest(
      const envoy::service::discovery::v3::DiscoveryRequest& request);

  // Responses that should go out now, in ADS order: CDS (adding or changing
  // clusters), EDS, LDS, RDS, and a CDS that only removes clusters last.
  std::vector<PendingResponse> Poll(const ViewSnapshot& snapshot);
  // For clients with TTLs: what the client holds of each type that is not
  // awaiting an answer, again with bodies and the same version_info. Envoy
  // drops body-less state-of-the-world heartbeats before refreshing TTLs
  // (and would read them as removals in CDS and LDS), so a refresh must
  // carry the resources.
  std::vector<PendingResponse> Heartbeats(const ViewSnapshot& snapshot);

  const TypeState& Of(ResourceType type) const { return types_[Index(type)]; }
  // Clients with TTLs: keep what each type last accepted, for heartbeats.
  // Off by default, so other streams copy nothing on an ACK.
  void KeepAccepted() { keep_accepted_ = true; }

 private:
  struct Candidate {
    ResourceType type;
    std::string version_info;
    std::vector<ResourcePtr> resources;  // EDS/RDS
    ResourceMapPtr full;                 // LDS/CDS: the whole response
    bool removal_only = false;
    bool complete = true;  // false: more to send from the same map
  };

  // What to send now; with `only`, looks at those names alone (the others
  // are known to hold nothing new).
  std::optional<Candidate> Compute(
      ResourceType type, const ViewSnapshot& snapshot,
      const std::vector<std::string>* only = nullptr) const;
  // True when `snapshot` holds nothing new for the type (see QuietMark).
  bool Quiet(ResourceType type, const ViewSnapshot& snapshot) const;
  // Compute, skipped when quiet; remembers when there was nothing to send.
  std::optional<Candidate> Next(ResourceType type,
                                const ViewSnapshot& snapshot);
  bool HasWork(ResourceType type, const ViewSnapshot& snapshot) const;
  // Adds the clusters of the last CDS response that `candidate` drops.
  void KeepRemovedClusters(Candidate* candidate) const;
  // After a CDS NACK: whether the client may lack `cluster` because of it.
  bool MayBeRejected(std::string_view cluster, Flavor flavor) const;
  // Takes out of an LDS/RDS candidate what points at a cluster the client
  // may have rejected; false when nothing is left to send.
  bool DropHeld(Candidate* candidate, const ViewSnapshot& snapshot) const;
  void Commit(Candidate candidate, const ViewSnapshot& snapshot,
              std::vector<PendingResponse>* out);
  TypeState& Mutable(ResourceType type) { return types_[Index(type)]; }

  std::optional<ResourceType> only_type_;
  std::array<TypeState, kResourceTypeCount> types_;
  uint64_t nonce_counter_ = 0;
  bool keep_accepted_ = false;
};

}  // namespace attache
