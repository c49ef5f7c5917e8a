#include "xds/server/sotw_state.h"

#include <algorithm>

#include "util/content_hash.h"

namespace attache {
namespace {

// Erases `name` from what an EDS/RDS stream holds, keeping its version sum.
void ForgetSent(TypeState& state, std::string_view name) {
  if (auto it = state.sent.find(name); it != state.sent.end()) {
    state.version_sum -= SotwEntryHash(it->first, it->second);
    state.sent.erase(it);
  }
}

// True when `request` names exactly the explicit (non-wildcard) names the
// stream already has, so that nothing about the subscription changes.
bool RepeatsSubscription(
    const TypeState& state,
    const envoy::service::discovery::v3::DiscoveryRequest& request) {
  if (!state.requested || state.wildcard || state.names.empty() ||
      static_cast<size_t>(request.resource_names_size()) !=
          state.names.size()) {
    return false;
  }
  // In the same order (Envoy sends them sorted, as attache keeps them):
  // pairwise equal. '*' is never among `names`. Other orders take the slow
  // path.
  auto held = state.names.begin();
  for (const std::string& name : request.resource_names()) {
    if (name != *held) {
      return false;
    }
    ++held;
  }
  return true;
}

const ResourceMap& Entries(const ResourceMapPtr& map) {
  static const ResourceMap kNone;
  return map ? *map : kNone;
}

// True when both hold the same names at the same versions.
bool SameVersions(const ResourceMap& a, const ResourceMap& b) {
  return &a == &b ||
         std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const auto& x, const auto& y) {
                      return x.first == y.first &&
                             (x.second == y.second ||
                              x.second->version == y.second->version);
                    });
}

// Whether a resource of `map` is new or changed since `before`.
bool Differs(const ResourceMap& before, const std::string& name,
             const ResourcePtr& resource) {
  auto it = before.find(name);
  return it == before.end() ||
         (it->second != resource && it->second->version != resource->version);
}

std::string FullVersion(const ResourceMap& resources) {
  return OrderedVersion(
      resources,
      [](const ResourcePtr& r) -> const std::string& { return r->version; });
}

// EDS/RDS: the version names everything the client will hold once it takes
// `resources`, sent now or before.
std::string SubsetVersion(const TypeState& state,
                          const std::vector<ResourcePtr>& resources) {
  uint64_t version = state.version_sum;
  for (const ResourcePtr& resource : resources) {
    if (auto it = state.sent.find(resource->name); it != state.sent.end()) {
      version -= SotwEntryHash(it->first, it->second);
    }
    version += SotwEntryHash(resource->name, resource->version);
  }
  return HashHex(version);
}

bool SameVersion(const ResourcePtr& a, const ResourcePtr& b) {
  return a == b || a->version == b->version;
}

// `resources` is sorted by name.
bool Contains(const std::vector<ResourcePtr>& resources,
              std::string_view name) {
  auto it = std::lower_bound(
      resources.begin(), resources.end(), name,
      [](const ResourcePtr& r, std::string_view n) { return r->name < n; });
  return it != resources.end() && (*it)->name == name;
}

// After a NACK of the last CDS response (`state.last_response`): which of its
// clusters the client may have rejected. A NACK says that some cluster was
// refused, not which. gRPC clients validate each resource on its own (gRFC
// A46) and keep every valid cluster of a response they NACK. Holding every
// route until the client ACKs a CDS therefore stalls a client that shares one
// ADS stream across targets (grpc-js; C-core with one XdsClient per process,
// as in Debian's 1.51): each new target adds its cluster to a response that
// still carries the bad one, so no CDS is ever ACKed and no new target ever
// resolves. Routes wait only on the clusters that can be the refused one:
//  - only a cluster the client has not ACKed at this version can be;
//  - when every suspect of the previous NACK is still there, unchanged, it
//    explains this NACK on its own (validation is deterministic), so the
//    suspects stay as they are and what the response adds is presumed taken.
//    This is the shared stream asking for one more cluster next to the bad
//    one: without it, each new target would stall as before;
//  - otherwise (a suspect was changed, fixed or dropped) the suspects are
//    the ones still there unchanged plus what is new or changed since the
//    previous answered response; what was presumed taken and did not change
//    stays so;
//  - if that leaves none, a cluster presumed taken must be the refused one:
//    every cluster not ACKed at this version is suspect.
// An ACK clears them. A cluster that first came next to an unchanged earlier
// suspect becomes one only when nothing else can explain a later NACK, so a
// route waits only on a cluster that may itself be the invalid one, until it
// changes, the client drops it or a CDS is ACKed. The cost: a presumed
// cluster that is invalid too gets routes pointed at it, and the client fails
// their calls with its NACK error; for a new target that is no worse than
// leaving it unanswered. Clients that may reject a response whole get no
// presumption (SotwState::MayBeRejected).
void SuspectRejectedClusters(TypeState& state) {
  const ResourceMap& rejected = Entries(state.last_response);
  const ResourceMap& acked = Entries(state.acked_response);
  const ResourceMap& before = Entries(state.answered_response);
  std::vector<ResourcePtr> still;  // earlier suspects present and unchanged
  for (const ResourcePtr& suspect : state.suspects) {
    auto it = rejected.find(suspect->name);
    if (it != rejected.end() && SameVersion(it->second, suspect)) {
      still.push_back(it->second);
    }
  }
  if (!state.suspects.empty() && still.size() == state.suspects.size()) {
    state.suspects = std::move(still);
    return;
  }
  std::vector<ResourcePtr> suspects;  // in name order, like `rejected`
  for (const auto& [name, resource] : rejected) {
    if (Differs(acked, name, resource) &&
        (Differs(before, name, resource) || Contains(still, name))) {
      suspects.push_back(resource);
    }
  }
  if (suspects.empty()) {
    for (const auto& [name, resource] : rejected) {
      if (Differs(acked, name, resource)) {
        suspects.push_back(resource);
      }
    }
  }
  state.suspects = std::move(suspects);
}

}  // namespace

SotwState::RequestOutcome SotwState::OnRequest(
    const envoy::service::discovery::v3::DiscoveryRequest& request) {
  RequestOutcome outcome = OutcomeForType(request.type_url(), only_type_);
  if (!outcome.type) {
    return outcome;  // an error, or a type attache does not serve
  }
  const ResourceType type = *outcome.type;
  TypeState& state = Mutable(type);
  state.quiet.Clear();

  // The subscription: names are exact keys. For LDS/CDS an empty list means
  // wildcard only while no name was ever sent; '*' is wildcard explicitly.
  // Most requests (ACKs) repeat it unchanged: that is checked without
  // copying the names.
  const bool repeated = RepeatsSubscription(state, request);
  bool wildcard = false;
  std::set<std::string, std::less<>> names;
  if (repeated) {
    // Nothing to compute: the subscription stays as it is.
  } else if (SupportsWildcard(type) && request.resource_names_size() == 0 &&
             !state.ever_named) {
    wildcard = true;
  } else {
    state.ever_named = state.ever_named || SupportsWildcard(type);
    for (const std::string& name : request.resource_names()) {
      if (SupportsWildcard(type) && name == "*") {
        wildcard = true;
      } else {
        names.insert(name);
      }
    }
  }
  const bool resubscribed =
      !repeated && (wildcard != state.wildcard || names != state.names);
  if (resubscribed) {
    state.answered.Clear();  // the response in flight is not all it needs
    state.subscription_changed = state.requested;
    state.wildcard = wildcard;
    state.names = std::move(names);
    if (!IsFullState(type)) {
      // Forget what was sent for names no longer wanted, so that subscribing
      // again sends them again.
      std::vector<std::string> unwanted;
      for (const auto& [name, version] : state.sent) {
        if (!state.names.contains(name)) {
          unwanted.push_back(name);
        }
      }
      for (const std::string& name : unwanted) {
        ForgetSent(state, name);
      }
      // Nor heartbeats for them.
      std::erase_if(state.acked_sent, [&state](const auto& entry) {
        return !state.names.contains(entry.first);
      });
    }
  }

  if (!state.requested) {
    // The first request of a type on this stream, whatever version or nonce
    // it carries from an earlier stream, gets the current state.
    state.requested = true;
    state.force_response = true;
    outcome.kind = RequestKind::kInitial;
    return outcome;
  }
  const std::string& nonce = request.response_nonce();
  if (nonce.empty() || nonce != state.last_nonce) {
    outcome.kind = RequestKind::kStale;
    return outcome;
  }
  if (state.inflight_nonce.empty()) {
    outcome.kind = RequestKind::kUpdate;  // already answered this nonce
    return outcome;
  }
  state.inflight_nonce.clear();
  const bool was_heartbeat = state.inflight_heartbeat;
  if (!was_heartbeat) {
    state.quiet = state.answered;
  }
  if (!was_heartbeat) {
    state.rejected = request.has_error_detail();
  }
  if (request.has_error_detail()) {
    ++state.nacks;
    state.last_nack =
        NackRecord{request.version_info(), nonce, request.error_detail().code(),
                   request.error_detail().message()};
    outcome.kind = RequestKind::kNack;
  } else {
    ++state.acks;
    if (!state.inflight_heartbeat) {
      state.acked_version = state.last_version_info;
      if (keep_accepted_ || type == ResourceType::kCluster) {
        state.acked_response = state.last_response;
      }
      if (keep_accepted_) {
        for (auto& [name, version] : state.inflight_sent) {
          if (state.names.contains(name)) {  // unless unsubscribed meanwhile
            state.acked_sent.insert_or_assign(name, std::move(version));
          }
        }
      }
    }
    outcome.kind = RequestKind::kAck;
  }
  if (type == ResourceType::kCluster && !was_heartbeat) {
    if (request.has_error_detail()) {
      SuspectRejectedClusters(state);
    } else {
      state.suspects.clear();
    }
    state.answered_response = state.last_response;
  }
  state.inflight_heartbeat = false;
  state.inflight_sent.clear();
  return outcome;
}

std::optional<SotwState::Candidate> SotwState::Compute(
    ResourceType type, const ViewSnapshot& snapshot,
    const std::vector<std::string>* only) const {
  const TypeState& state = Of(type);
  if (!state.requested || !state.inflight_nonce.empty()) {
    return std::nullopt;
  }
  Candidate candidate;
  candidate.type = type;
  const ResourceMap& available = snapshot.Of(type);
  // Visits the subscribed resources in name order (of `only`, if given).
  auto for_each_subscribed = [&](auto&& visit) {
    if (only != nullptr) {
      for (const std::string& name : *only) {
        if (!state.wildcard && !state.names.contains(name)) {
          continue;
        }
        if (auto it = available.find(name); it != available.end()) {
          visit(it->second);
        }
      }
      return;
    }
    if (state.wildcard) {
      for (const auto& [name, resource] : available) {
        visit(resource);
      }
      return;
    }
    for (const std::string& name : state.names) {
      if (auto it = available.find(name); it != available.end()) {
        visit(it->second);
      }
    }
  };

  if (IsFullState(type)) {
    if (state.wildcard) {
      candidate.full = snapshot.resources[Index(type)];
    } else {
      auto own = std::make_shared<ResourceMap>();
      for_each_subscribed([&own](const ResourcePtr& resource) {
        own->emplace_hint(own->end(), resource->name, resource);
      });
      candidate.full = std::move(own);
    }
    const ResourceMap& desired = *candidate.full;
    const ResourceMap& before = Entries(state.last_response);
    const bool changed = !SameVersions(desired, before);
    if (!changed && !state.force_response && !state.subscription_changed) {
      return std::nullopt;
    }
    candidate.version_info = FullVersion(desired);
    const bool adds_or_modifies =
        std::any_of(desired.begin(), desired.end(), [&before](const auto& e) {
          return Differs(before, e.first, e.second);
        });
    candidate.removal_only = changed && !adds_or_modifies &&
                             !state.force_response &&
                             !state.subscription_changed;
    return candidate;
  }
  // gRPC clients refuse responses over 4 MiB. EDS and RDS may be split: what
  // does not fit stays unsent and goes in the next response, after the ACK.
  size_t bytes = 0;
  for_each_subscribed([&](const ResourcePtr& resource) {
    auto it = state.sent.find(resource->name);
    if (!candidate.complete ||
        (!state.force_response && it != state.sent.end() &&
         it->second == resource->version)) {
      return;
    }
    bytes += EncodedSizeBound(*resource);
    if (bytes > kMaxResponseBytes && !candidate.resources.empty()) {
      candidate.complete = false;
      return;
    }
    candidate.resources.push_back(resource);
  });
  if (candidate.resources.empty() && !state.force_response) {
    return std::nullopt;
  }
  candidate.version_info = SubsetVersion(state, candidate.resources);
  return candidate;
}

bool SotwState::Quiet(ResourceType type, const ViewSnapshot& snapshot) const {
  const TypeState& state = Of(type);
  return state.requested && state.inflight_nonce.empty() &&
         !state.force_response && !state.subscription_changed &&
         state.quiet.StillQuiet(snapshot, type, [&state](const auto& name) {
           return state.wildcard || state.names.contains(name);
         });
}

std::optional<SotwState::Candidate> SotwState::Next(
    ResourceType type, const ViewSnapshot& snapshot) {
  TypeState& state = Mutable(type);
  if (Quiet(type, snapshot)) {
    state.quiet.Set(snapshot, type);  // follow the chain of changes
    return std::nullopt;
  }
  // Up to date with the previous map: only what changed since can be new.
  const std::vector<std::string>* only = nullptr;
  if (!IsFullState(type) && !state.force_response &&
      !state.subscription_changed) {
    only = state.quiet.ChangedSince(snapshot, type);
  }
  auto candidate = Compute(type, snapshot, only);
  if (!candidate && state.requested && state.inflight_nonce.empty()) {
    state.quiet.Set(snapshot, type);
  }
  return candidate;
}

bool SotwState::HasWork(ResourceType type, const ViewSnapshot& snapshot) const {
  return !Of(type).inflight_nonce.empty() ||
         (!Quiet(type, snapshot) && Compute(type, snapshot).has_value());
}

void SotwState::Commit(Candidate candidate, const ViewSnapshot& snapshot,
                       std::vector<PendingResponse>* out) {
  TypeState& state = Mutable(candidate.type);
  state.quiet.Clear();
  // Once the client answers, it holds everything this map has for it.
  state.answered.Clear();
  if (candidate.complete) {
    state.answered.Set(snapshot, candidate.type);
  }
  const std::string nonce = std::to_string(++nonce_counter_);
  state.inflight_nonce = nonce;
  state.last_nonce = nonce;
  state.last_version_info = candidate.version_info;
  state.inflight_heartbeat = false;
  state.force_response = false;
  state.subscription_changed = false;
  ++state.responses;
  if (IsFullState(candidate.type)) {
    const ResourceMap& full = *candidate.full;
    if (candidate.type == ResourceType::kCluster) {
      // A cluster that is new or changed makes Envoy warm it and wait for its
      // ClusterLoadAssignment: forget the one sent so that it goes again.
      TypeState& endpoints = Mutable(ResourceType::kEndpoint);
      endpoints.quiet.Clear();
      endpoints.answered.Clear();
      const ResourceMap& before = Entries(state.last_response);
      for (const auto& [name, resource] : full) {
        if (Differs(before, name, resource)) {
          ForgetSent(endpoints, name);
        }
      }
    }
    candidate.resources.reserve(full.size());
    for (const auto& [name, resource] : full) {
      candidate.resources.push_back(resource);
    }
    state.last_response = candidate.full;
  } else {
    state.inflight_sent.clear();
    for (const ResourcePtr& resource : candidate.resources) {
      if (keep_accepted_) {
        state.inflight_sent.emplace(resource->name, resource->version);
      }
      ForgetSent(state, resource->name);
      state.sent.emplace(resource->name, resource->version);
      state.version_sum += SotwEntryHash(resource->name, resource->version);
    }
  }
  // A map shared with the snapshot is encoded once for every stream.
  ResourceMapPtr whole;
  if (candidate.full == snapshot.resources[Index(candidate.type)]) {
    whole = std::move(candidate.full);
  }
  out->push_back(
      PendingResponse{candidate.type, std::move(candidate.version_info), nonce,
                      std::move(candidate.resources), std::move(whole)});
}

void SotwState::KeepRemovedClusters(Candidate* candidate) const {
  const ResourceMap& before = Entries(Of(ResourceType::kCluster).last_response);
  auto kept = std::make_shared<ResourceMap>(*candidate->full);
  bool any = false;
  for (const auto& [name, resource] : before) {
    any = kept->emplace(name, resource).second || any;
  }
  if (any) {
    candidate->complete = false;  // the kept clusters must go later
    candidate->version_info = FullVersion(*kept);
    candidate->full = std::move(kept);
  }
}

std::vector<PendingResponse> SotwState::Poll(const ViewSnapshot& snapshot) {
  std::vector<PendingResponse> out;
  if (auto clusters = Next(ResourceType::kCluster, snapshot)) {
    // Make before break: a cluster goes away only after listeners and routes
    // stopped using it. Until then a response that adds clusters keeps it.
    const bool routes_busy = HasWork(ResourceType::kListener, snapshot) ||
                             HasWork(ResourceType::kRoute, snapshot);
    if (!routes_busy) {
      Commit(std::move(*clusters), snapshot, &out);
    } else if (!clusters->removal_only) {
      KeepRemovedClusters(&*clusters);
      Commit(std::move(*clusters), snapshot, &out);
    }
  }
  if (auto endpoints = Next(ResourceType::kEndpoint, snapshot)) {
    Commit(std::move(*endpoints), snapshot, &out);
  }
  // Routes may point at clusters the client does not have until it answers
  // CDS, so none go while a CDS response is in flight. After a NACK, what
  // points at a cluster the client may have rejected waits for a CDS it
  // accepts, and the rest goes: make before break must not become never.
  const TypeState& clusters = Of(ResourceType::kCluster);
  if (clusters.inflight_nonce.empty()) {
    for (ResourceType type : {ResourceType::kListener, ResourceType::kRoute}) {
      auto candidate = Next(type, snapshot);
      if (candidate &&
          (!clusters.rejected || DropHeld(&*candidate, snapshot))) {
        Commit(std::move(*candidate), snapshot, &out);
      }
    }
  }
  return out;
}

bool SotwState::MayBeRejected(std::string_view cluster, Flavor flavor) const {
  const TypeState& clusters = Of(ResourceType::kCluster);
  if (flavor == Flavor::kGrpc) {
    return Contains(clusters.suspects, cluster);
  }
  // Envoy rejects a response whole when one of its clusters fails proto
  // validation, so it may have taken none of it: any cluster it has not
  // ACKed at this version may be missing, and a route to it would send
  // requests to a cluster it never got.
  const ResourceMap& rejected = Entries(clusters.last_response);
  auto it = rejected.find(cluster);
  return it != rejected.end() &&
         Differs(Entries(clusters.acked_response), it->first, it->second);
}

bool SotwState::DropHeld(Candidate* candidate,
                         const ViewSnapshot& snapshot) const {
  const Flavor flavor = snapshot.key.flavor;
  // The references were found when the resource was made (Resource::clusters).
  auto held = [this, flavor](const ResourcePtr& resource) {
    return std::any_of(resource->clusters.begin(), resource->clusters.end(),
                       [this, flavor](const std::string& cluster) {
                         return MayBeRejected(cluster, flavor);
                       });
  };
  const TypeState& state = Of(candidate->type);
  if (IsFullState(candidate->type)) {
    // Leaving a listener out of a full-state response would remove it, so
    // one that must wait holds back the response; what the client already
    // has may go again. A listener on RDS names no cluster and never waits.
    const ResourceMap& before = Entries(state.last_response);
    return std::none_of(candidate->full->begin(), candidate->full->end(),
                        [&](const auto& entry) {
                          return Differs(before, entry.first, entry.second) &&
                                 held(entry.second);
                        });
  }
  if (std::erase_if(candidate->resources, held) == 0) {
    return true;
  }
  candidate->complete = false;  // what waits is looked at again next time
  if (candidate->resources.empty()) {
    // Not even the answer to an initial request: it comes with the route.
    return false;
  }
  candidate->version_info = SubsetVersion(state, candidate->resources);
  return true;
}

std::vector<PendingResponse> SotwState::Heartbeats(
    const ViewSnapshot& snapshot) {
  std::vector<PendingResponse> out;
  for (ResourceType type : kAllResourceTypes) {
    TypeState& state = Mutable(type);
    // After a NACK the client keeps content attache no longer has the bytes
    // of; refreshing what was rejected would only be rejected again.
    if (!state.requested || !state.inflight_nonce.empty() ||
        state.acked_version.empty()) {
      continue;
    }
    std::vector<ResourcePtr> held;
    if (IsFullState(type)) {
      for (const auto& [name, resource] : Entries(state.acked_response)) {
        held.push_back(resource);
      }
    } else {
      const ResourceMap& available = snapshot.Of(type);
      for (const auto& [name, version] : state.acked_sent) {
        auto it = available.find(name);
        if (it != available.end() && it->second->version == version) {
          held.push_back(it->second);
        }
      }
    }
    if (held.empty()) {
      continue;
    }
    const std::string nonce = std::to_string(++nonce_counter_);
    state.inflight_nonce = nonce;
    state.inflight_heartbeat = true;
    state.last_nonce = nonce;
    ++state.responses;
    out.push_back(PendingResponse{type, state.acked_version, nonce,
                                  std::move(held), nullptr});
  }
  return out;
}

}  // namespace attache
