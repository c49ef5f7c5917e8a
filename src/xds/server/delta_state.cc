#include "xds/server/delta_state.h"

#include <algorithm>

#include "util/content_hash.h"

namespace attache {
namespace {

constexpr std::string_view kWildcard = "*";

}  // namespace

void DeltaState::Subscribe(
    DeltaTypeState& state,
    const envoy::service::discovery::v3::DeltaDiscoveryRequest& request,
    bool first) {
  // The legacy wildcard: a first request that names nothing. Later requests
  // subscribe to '*' explicitly.
  if (first && request.resource_names_subscribe_size() == 0) {
    state.wildcard = true;
  }
  for (const std::string& name : request.resource_names_subscribe()) {
    if (name == kWildcard) {
      state.wildcard = true;
      continue;
    }
    state.names.insert(name);
    state.told_absent.erase(name);
    state.must_remove.erase(name);
    if (!first) {
      // A subscription is answered with the resource even if the client
      // should hold it already: it may have dropped it.
      state.held.erase(name);
    }
  }
  for (const std::string& name : request.resource_names_unsubscribe()) {
    if (name == kWildcard) {
      if (state.wildcard) {
        state.wildcard = false;
        // The client drops what only the wildcard gave it by itself.
        std::erase_if(state.held, [&state](const auto& entry) {
          return !state.names.contains(entry.first);
        });
      }
      continue;
    }
    auto it = state.names.find(name);
    if (it == state.names.end()) {
      continue;  // never subscribed: nothing to do
    }
    state.names.erase(it);
    state.told_absent.erase(name);
    state.held.erase(name);
    if (state.wildcard) {
      // The client may have dropped it although '*' still covers it: send
      // it again if it exists, or say that it does not.
      state.must_remove.insert(name);
    }
  }
}

RequestOutcome DeltaState::OnRequest(
    const envoy::service::discovery::v3::DeltaDiscoveryRequest& request) {
  RequestOutcome outcome = OutcomeForType(request.type_url(), only_type_);
  if (!outcome.type) {
    return outcome;  // an error, or a type attache does not serve
  }
  DeltaTypeState& state = Mutable(*outcome.type);
  state.quiet.Clear();
  if (request.resource_names_subscribe_size() != 0 ||
      request.resource_names_unsubscribe_size() != 0) {
    state.answered.Clear();  // the response in flight is not all it needs
  }
  const bool first = !state.requested;
  // Subscription changes apply whatever the nonce says.
  Subscribe(state, request, first);
  if (first) {
    state.requested = true;
    // A client that reconnects lists what it holds: it gets only what is
    // missing or changed, and removals of what vanished. A new client gets
    // an answer even when there is nothing, so that it can finish starting.
    for (const auto& [name, version] : request.initial_resource_versions()) {
      if (name != kWildcard && (state.wildcard || state.names.contains(name))) {
        // Held either way (a removal must reach it), but an assignment of a
        // cluster that changed meanwhile goes again.
        state.held[name] =
            state.resend_on_first.contains(name) ? std::string() : version;
      }
    }
    state.resend_on_first.clear();
    state.force_response = request.initial_resource_versions().empty();
    outcome.kind = RequestKind::kInitial;
    return outcome;
  }
  const std::string& nonce = request.response_nonce();
  if (nonce.empty()) {
    outcome.kind = RequestKind::kUpdate;
    return outcome;
  }
  if (nonce != state.inflight_nonce) {
    outcome.kind = RequestKind::kStale;
    return outcome;
  }
  state.inflight_nonce.clear();
  state.rejected = request.has_error_detail();
  if (request.has_error_detail()) {
    for (const ResourcePtr& resource : state.inflight) {
      const std::string& name = resource->name;
      // Never these bytes again, even if the subscription changed while
      // they were on their way (a name subscribed again is no longer held).
      state.rejected_versions[name] = resource->version;
      auto it = state.held.find(name);
      if (it == state.held.end()) continue;
      state.rejected_names.insert(name);
      if (auto before = state.inflight_replaced.find(name);
          before != state.inflight_replaced.end()) {
        it->second = before->second;  // what the client kept
      } else {
        state.held.erase(it);
      }
    }
    ++state.nacks;
    state.last_nack =
        NackRecord{state.acked_version, nonce, request.error_detail().code(),
                   request.error_detail().message()};
    outcome.kind = RequestKind::kNack;
  } else {
    ++state.acks;
    state.acked_version = state.last_version_info;
    state.quiet = state.answered;
    outcome.kind = RequestKind::kAck;
  }
  state.inflight.clear();  // only a NACK needs them
  state.inflight_replaced.clear();
  return outcome;
}

std::optional<DeltaState::Candidate> DeltaState::Compute(
    ResourceType type, const ViewSnapshot& snapshot, bool allow_removals,
    const std::vector<std::string>* only) const {
  const DeltaTypeState& state = Of(type);
  if (!state.requested || !state.inflight_nonce.empty()) {
    return std::nullopt;
  }
  const ResourceMap& available = snapshot.Of(type);
  Candidate candidate{type, {}, {}, allow_removals};
  size_t bytes = 0;
  bool full = false;
  auto consider = [&](const ResourcePtr& resource) {
    auto it = state.held.find(resource->name);
    if (full || (it != state.held.end() && it->second == resource->version)) {
      return;
    }
    if (auto r = state.rejected_versions.find(resource->name);
        r != state.rejected_versions.end() && r->second == resource->version) {
      return;  // rejected: never the same bytes again
    }
    // Large updates are split to stay under gRPC's message limit; the rest
    // goes in the next response, after the ACK.
    bytes += EncodedSizeBound(*resource);
    if (bytes > kMaxResponseBytes && !candidate.resources.empty()) {
      full = true;
      candidate.complete = false;
      return;
    }
    candidate.resources.push_back(resource);
  };
  if (only != nullptr) {
    for (const std::string& name : *only) {
      if (state.wildcard || state.names.contains(name)) {
        if (auto it = available.find(name); it != available.end()) {
          consider(it->second);
        }
      }
    }
  } else if (state.wildcard) {
    for (const auto& [name, resource] : available) {
      consider(resource);
    }
  } else {
    for (const std::string& name : state.names) {
      if (auto it = available.find(name); it != available.end()) {
        consider(it->second);
      }
    }
  }
  if (allow_removals && only != nullptr) {
    for (const std::string& name : *only) {
      if (available.contains(name)) {
        continue;
      }
      const bool subscribed = state.names.contains(name);
      if (state.held.contains(name) || state.must_remove.contains(name) ||
          (subscribed && !state.told_absent.contains(name))) {
        candidate.removed.push_back(name);
      }
    }
  } else if (allow_removals) {
    std::set<std::string, std::less<>> removed;
    for (const auto& [name, version] : state.held) {
      const bool wanted = state.wildcard || state.names.contains(name);
      if (!wanted || !available.contains(name)) {
        removed.insert(name);
      }
    }
    for (const std::string& name : state.names) {
      if (!available.contains(name) && !state.told_absent.contains(name)) {
        removed.insert(name);
      }
    }
    for (const std::string& name : state.must_remove) {
      if (!available.contains(name)) {
        removed.insert(name);
      }
    }
    candidate.removed.assign(removed.begin(), removed.end());
  }
  if (candidate.resources.empty() && candidate.removed.empty() &&
      !state.force_response) {
    return std::nullopt;
  }
  return candidate;
}

bool DeltaState::Quiet(ResourceType type, const ViewSnapshot& snapshot) const {
  const DeltaTypeState& state = Of(type);
  return state.requested && state.inflight_nonce.empty() &&
         !state.force_response &&
         state.quiet.StillQuiet(snapshot, type, [&state](const auto& name) {
           return state.wildcard || state.names.contains(name) ||
                  state.held.contains(name) || state.must_remove.contains(name);
         });
}

std::optional<DeltaState::Candidate> DeltaState::Next(
    ResourceType type, const ViewSnapshot& snapshot, bool allow_removals) {
  DeltaTypeState& state = Mutable(type);
  if (Quiet(type, snapshot)) {
    state.quiet.Set(snapshot, type);  // follow the chain of changes
    return std::nullopt;
  }
  // Up to date with the previous map: only what changed since can be new.
  const std::vector<std::string>* only =
      state.force_response ? nullptr : state.quiet.ChangedSince(snapshot, type);
  auto candidate = Compute(type, snapshot, allow_removals, only);
  if (!candidate && allow_removals && state.requested &&
      state.inflight_nonce.empty()) {
    state.quiet.Set(snapshot, type);
  }
  return candidate;
}

bool DeltaState::HasWork(ResourceType type,
                         const ViewSnapshot& snapshot) const {
  return !Of(type).inflight_nonce.empty() ||
         (!Quiet(type, snapshot) && Compute(type, snapshot, true).has_value());
}

PendingDeltaResponse DeltaState::Commit(Candidate candidate,
                                        const ViewSnapshot& snapshot) {
  DeltaTypeState& state = Mutable(candidate.type);
  state.quiet.Clear();
  // Once the client ACKs, it holds everything this map has for it.
  state.answered.Clear();
  if (candidate.complete) {
    state.answered.Set(snapshot, candidate.type);
  }
  const std::string nonce = std::to_string(++nonce_counter_);
  state.inflight_nonce = nonce;
  state.last_nonce = nonce;
  state.force_response = false;
  ++state.responses;
  state.inflight = candidate.resources;
  state.inflight_replaced.clear();
  for (const ResourcePtr& resource : candidate.resources) {
    auto [held, added] =
        state.held.try_emplace(resource->name, resource->version);
    if (!added) {
      state.inflight_replaced.emplace(resource->name, std::move(held->second));
      held->second = resource->version;
    }
    state.told_absent.erase(resource->name);
    state.must_remove.erase(resource->name);
    state.rejected_names.erase(resource->name);
    state.rejected_versions.erase(resource->name);
  }
  for (const std::string& name : candidate.removed) {
    state.must_remove.erase(name);
    state.rejected_names.erase(name);
    state.rejected_versions.erase(name);
    state.held.erase(name);
    if (state.names.contains(name)) {
      state.told_absent.insert(name);
    }
  }
  state.last_version_info = OrderedVersion(state.held);
  // A wildcard client's first answer is often the whole map: one encoding of
  // it serves every such stream.
  const ResourceMapPtr& all = snapshot.resources[Index(candidate.type)];
  const bool whole =
      candidate.removed.empty() &&
      std::equal(
          candidate.resources.begin(), candidate.resources.end(), all->begin(),
          all->end(),
          [](const ResourcePtr& a, const auto& b) { return a == b.second; });
  return PendingDeltaResponse{candidate.type,
                              state.last_version_info,
                              nonce,
                              std::move(candidate.resources),
                              std::move(candidate.removed),
                              false,
                              whole ? all : nullptr};
}

std::vector<PendingDeltaResponse> DeltaState::Poll(
    const ViewSnapshot& snapshot) {
  std::vector<PendingDeltaResponse> out;
  // Make before break: clusters go away only after listeners and routes
  // stopped using them; until then only additions and changes go out.
  const bool routes_busy = HasWork(ResourceType::kListener, snapshot) ||
                           HasWork(ResourceType::kRoute, snapshot);
  if (auto clusters = Next(ResourceType::kCluster, snapshot, !routes_busy)) {
    // A new or changed cluster makes Envoy warm it and wait for its load
    // assignment: send that again even if the client held it.
    DeltaTypeState& endpoints = Mutable(ResourceType::kEndpoint);
    endpoints.quiet.Clear();
    endpoints.answered.Clear();
    for (const ResourcePtr& resource : clusters->resources) {
      // Still held (so that it is removed if the cluster goes away before
      // it is sent again), at no version that matches.
      if (auto held = endpoints.held.find(resource->name);
          held != endpoints.held.end()) {
        held->second.clear();
      }
      if (!endpoints.requested) {
        endpoints.resend_on_first.insert(resource->name);
      }
    }
    out.push_back(Commit(std::move(*clusters), snapshot));
  }
  if (auto endpoints = Next(ResourceType::kEndpoint, snapshot, true)) {
    out.push_back(Commit(std::move(*endpoints), snapshot));
  }
  const DeltaTypeState& clusters = Of(ResourceType::kCluster);
  if (clusters.inflight_nonce.empty() && !clusters.rejected) {
    for (ResourceType type : {ResourceType::kListener, ResourceType::kRoute}) {
      if (auto candidate = Next(type, snapshot, true)) {
        out.push_back(Commit(std::move(*candidate), snapshot));
      }
    }
  }
  return out;
}

std::vector<PendingDeltaResponse> DeltaState::Heartbeats(
    const ViewSnapshot& snapshot) {
  std::vector<PendingDeltaResponse> out;
  for (ResourceType type : kAllResourceTypes) {
    DeltaTypeState& state = Mutable(type);
    if (!state.requested || !state.inflight_nonce.empty() ||
        state.held.empty()) {
      continue;
    }
    std::vector<ResourcePtr> held;
    const ResourceMap& available = snapshot.Of(type);
    for (const auto& [name, version] : state.held) {
      if (version.empty()) {
        continue;  // to be sent again: which version it has is unknown
      }
      auto it = available.find(name);
      // A rejected version is not what the client holds: no heartbeat for
      // it (a heartbeat must name the version the client has).
      if (state.rejected_names.contains(name)) {
        // The client kept an older version after a NACK: refresh that one
        // (a heartbeat carries only name and version).
        auto kept = std::make_shared<Resource>();
        kept->name = name;
        kept->version = version;
        held.push_back(std::move(kept));
      } else if (it != available.end() && it->second->version == version) {
        held.push_back(it->second);
      }
    }
    if (held.empty()) {
      continue;
    }
    const std::string nonce = std::to_string(++nonce_counter_);
    state.inflight_nonce = nonce;
    state.inflight.clear();
    state.inflight_replaced.clear();
    state.last_nonce = nonce;
    ++state.responses;
    out.push_back(PendingDeltaResponse{type,
                                       state.last_version_info,
                                       nonce,
                                       std::move(held),
                                       {},
                                       true,
                                       nullptr});
  }
  return out;
}

}  // namespace attache
