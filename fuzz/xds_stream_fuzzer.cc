// Fuzzes the per-stream xDS protocol state machines (SotwState and
// DeltaState) with arbitrary request sequences on one stream, interleaved
// with snapshot changes, polls and heartbeats, and checks what must hold
// whatever the client sends:
//
// - at most one response per type is in flight; nonces strictly increase;
//   each Poll answers in ADS order, and LDS/RDS wait while CDS is in flight
//   (delta: or was rejected); after a state-of-the-world CDS NACK no
//   listener or route names a cluster the NACK pins down (for Envoy, any
//   cluster of the rejected response it has not ACKed; for gRPC, which keeps
//   the valid clusters of a response it rejects, the one cluster of it not
//   ACKed, if there is only one);
// - a request is an ACK or NACK exactly when it answers the response in
//   flight of its type, and "initial" exactly when it is the type's first;
// - responses carry only resources of the current snapshot that the client
//   subscribes to (state of the world CDS may keep clusters of its previous
//   response: make before break); state-of-the-world LDS/CDS carry all of
//   them; delta never sends a version the client rejected, and never lists a
//   name both as a resource and as removed;
// - a heartbeat names exactly what the client holds, at the version it holds;
// - every response encodes to bytes that decode as its protobuf message;
// - once the client ACKs everything, the stream goes quiet within a few
//   rounds and the client holds exactly what the snapshot has for its
//   subscriptions (unless it NACKed something).
//
// The first byte picks the protocol, the service (ADS or one per-type
// service), the view and whether the client uses TTLs; FuzzedDataProvider
// turns the rest into the sequence of steps.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "fuzz_check.h"
#include "xds/cache/snapshot.h"
#include "xds/server/delta_state.h"
#include "xds/server/response_encoder.h"
#include "xds/server/sotw_state.h"

namespace attache {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;
using envoy::service::discovery::v3::DeltaDiscoveryResponse;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

constexpr ResourceType kCds = ResourceType::kCluster;
constexpr ResourceType kEds = ResourceType::kEndpoint;
constexpr ResourceType kLds = ResourceType::kListener;
constexpr ResourceType kRds = ResourceType::kRoute;

// --- snapshot generations ---------------------------------------------------

struct ServiceSpec {
  std::string name;
  uint32_t port = 80;                       // changes the load assignment
  LbPolicy policy = LbPolicy::kRoundRobin;  // changes the cluster
  std::optional<FailoverPolicy> failover;   // placed load assignments
};

Service MakeService(const ServiceSpec& spec) {
  Service service;
  service.settings.lb_policy = spec.policy;
  service.settings.failover = spec.failover;
  const char* zones[] = {"z1", "z2"};
  for (size_t i = 0; i < 2; ++i) {
    Endpoint endpoint;
    endpoint.address = "10.0.0." + std::to_string(i + 1);
    endpoint.port = spec.port;
    endpoint.locality = {"r1", zones[i], ""};
    service.endpoints.push_back(endpoint);
  }
  return service;
}

ServiceSpec Spec(std::string name, uint32_t port = 80,
                 LbPolicy policy = LbPolicy::kRoundRobin,
                 std::optional<FailoverPolicy> failover = std::nullopt) {
  return ServiceSpec{std::move(name), port, policy, failover};
}

// Catalog contents the generations move between: changes to load
// assignments only, to clusters only, additions, removals, nothing at all.
const std::vector<std::vector<ServiceSpec>>& Contents() {
  static const auto* contents = new std::vector<std::vector<ServiceSpec>>{
      {Spec("a"), Spec("b"), Spec("c")},
      {Spec("a", 81), Spec("b"), Spec("c")},
      {Spec("a", 81), Spec("b", 80, LbPolicy::kLeastRequest), Spec("d")},
      {},
      {Spec("a", 82, LbPolicy::kRoundRobin, FailoverPolicy::kZoneFailover),
       Spec("b"), Spec("c"), Spec("d"), Spec("e")},
      {Spec("b", 81, LbPolicy::kRingHash),
       Spec("e", 80, LbPolicy::kRoundRobin, FailoverPolicy::kWeighted)},
  };
  return *contents;
}

// Which content each generation has; one generation is built without its
// predecessor, so streams see a map with no record of what changed.
constexpr size_t kGenerationContent[] = {0, 1, 2, 2, 3, 0, 4, 1,
                                         1, 5, 0, 2, 3, 4, 5, 0};
constexpr size_t kFreshGeneration = 12;

// Per view (Envoy; gRPC from nowhere; gRPC in zone z1), the snapshot of each
// generation, built in order as the server builds them, so that each map
// knows what changed since the previous one.
const std::array<std::vector<ViewSnapshotPtr>, 3>& Generations() {
  static const auto* chains = [] {
    const std::array<ViewKey, 3> views = {ViewKey{Flavor::kEnvoy, {}},
                                          ViewKey{Flavor::kGrpc, {}},
                                          ViewKey{Flavor::kGrpc, {"r1", "z1"}}};
    auto* built = new std::array<std::vector<ViewSnapshotPtr>, 3>;
    SnapshotSetPtr previous;
    uint64_t generation = 0;
    for (size_t content : kGenerationContent) {
      CatalogSnapshot catalog;
      catalog.generation = ++generation;
      for (const ServiceSpec& spec : Contents()[content]) {
        catalog.services[spec.name] = MakeService(spec);
      }
      const bool fresh = generation - 1 == kFreshGeneration;
      SnapshotSetPtr set = BuildSnapshotSet(catalog, TranslateOptions{},
                                            fresh ? nullptr : previous);
      for (size_t i = 0; i < views.size(); ++i) {
        (*built)[i].push_back(set->View(views[i]));
      }
      previous = std::move(set);
    }
    return built;
  }();
  return *chains;
}

// --- the client's side
// --------------------------------------------------------

// One response as the client received it.
struct Sent {
  ResourceType type = kCds;
  std::string nonce;
  std::vector<ResourcePtr> resources;
  std::vector<std::string> removed;
  bool heartbeat = false;
  // Delta: names the client unsubscribed from while the response was on its
  // way; it ignores them (the server forgot it had sent them).
  std::set<std::string, std::less<>> ignored;
};

// What the client knows about one type.
struct ClientType {
  bool requested = false;
  std::optional<Sent> in_flight;   // received, not yet ACKed or NACKed
  std::string last_nonce;          // of the type's last response
  std::vector<std::string> names;  // SotW: the resource_names last sent
  std::map<std::string, std::string, std::less<>> held;  // accepted versions
  // SotW LDS/CDS: the last response, by name (what may be kept).
  std::map<std::string, ResourcePtr, std::less<>> last_full;
  // Delta: versions the client NACKed that must not come again.
  std::map<std::string, std::string, std::less<>> rejected;
  bool last_answer_nack = false;  // gates LDS/RDS when this is CDS
  // SotW CDS, after a NACK: clusters no listener or route may name.
  std::set<std::string, std::less<>> pinned;
};

// ATTACHE_FUZZ_TRACE=1 prints every step, to see what a finding did.
bool Tracing() {
  // Read once, before anything else could touch the environment.
  static const bool tracing =
      std::getenv("ATTACHE_FUZZ_TRACE") !=  // NOLINT(concurrency-mt-unsafe)
      nullptr;
  return tracing;
}

std::string Describe(const Sent& response) {
  std::string text = std::string(ShortName(response.type)) + " nonce " +
                     response.nonce + (response.heartbeat ? " heartbeat" : "") +
                     " [";
  for (const ResourcePtr& resource : response.resources) {
    text += " " + resource->name + "@" + resource->version.substr(0, 6);
  }
  text += " ] removed [";
  for (const std::string& name : response.removed) {
    text += " " + name;
  }
  return text + " ]";
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  FUZZ_CHECK(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

class StreamFuzz {
 public:
  StreamFuzz(FuzzedDataProvider& input, bool delta,
             std::optional<ResourceType> only_type,
             const std::vector<ViewSnapshotPtr>& generations, bool ttl)
      : in_(input),
        delta_(delta),
        only_type_(only_type),
        generations_(generations),
        ttl_{ttl ? uint64_t{30'000} : 0, ttl},
        sotw_(only_type),
        delta_state_(only_type) {
    if (ttl) {
      sotw_.KeepAccepted();
    }
  }

  void Run() {
    for (int step = 0; step < 256 && in_.remaining_bytes() > 0 && !failed_;
         ++step) {
      switch (in_.ConsumeIntegralInRange(0, 9)) {
        case 0:
        case 1:
        case 2:
        case 3:
          Request();
          if (in_.ConsumeBool()) {
            Poll();
          }
          break;
        case 4:
        case 5:
          NextGeneration();
          if (in_.ConsumeBool()) {
            Poll();
          }
          break;
        case 6:
          Poll();
          break;
        case 7:
          Heartbeats();
          break;
        default:
          AnswerAll(in_.ConsumeIntegralInRange(0, 7) != 0);
          break;
      }
    }
    if (!failed_) {
      Drain();
    }
  }

 private:
  const ViewSnapshot& Snapshot() const { return *generations_[generation_]; }

  // The subscription as the state machine understood it.
  bool Wildcard(ResourceType type) const {
    return delta_ ? delta_state_.Of(type).wildcard : sotw_.Of(type).wildcard;
  }
  const std::set<std::string, std::less<>>& Names(ResourceType type) const {
    return delta_ ? delta_state_.Of(type).names : sotw_.Of(type).names;
  }
  bool Wanted(ResourceType type, const std::string& name) const {
    return Wildcard(type) || Names(type).contains(name);
  }

  // --- building requests
  // ------------------------------------------------------

  // Random text that is valid UTF-8, as every string of a request that
  // parsed is (the server fails a stream whose request does not parse).
  std::string Text(size_t max_length) {
    std::string text = in_.ConsumeRandomLengthString(max_length);
    for (char& c : text) {
      c = static_cast<char>(0x20 + static_cast<unsigned char>(c) % 0x5f);
    }
    return text;
  }

  std::string Name() {
    static const char* const kPool[] = {"a", "b", "c", "d",
                                        "e", "*", "",  "\u00f1"};
    if (in_.ConsumeIntegralInRange(0, 15) == 0) {
      return Text(8);
    }
    return kPool[in_.ConsumeIntegralInRange<size_t>(0, 7)];
  }

  std::vector<std::string> NameList() {
    std::vector<std::string> names(in_.ConsumeIntegralInRange(0, 4));
    for (std::string& name : names) {
      name = Name();
    }
    return names;
  }

  std::string TypeUrlChoice() {
    const int choice = in_.ConsumeIntegralInRange(0, 15);
    if (choice < 12) {
      return std::string(TypeUrl(kAllResourceTypes[choice % 4]));
    }
    switch (choice) {
      case 12:
        return "";  // fails an ADS stream
      case 13:
        return "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
      case 14:
        return Text(16);
      default:
        return only_type_ ? std::string(TypeUrl(*only_type_)) : "";
    }
  }

  std::string NonceFor(std::optional<ResourceType> type) {
    const ClientType* client =
        type ? &clients_[Index(*type)] : &clients_[Index(kCds)];
    switch (in_.ConsumeIntegralInRange(0, 7)) {
      case 0:
      case 1:
      case 2:
      case 3:
        return client->in_flight ? client->in_flight->nonce
                                 : client->last_nonce;
      case 4:
        return client->last_nonce;
      case 5:
        return "";
      case 6:
        return std::to_string(last_nonce_);  // perhaps another type's
      default:
        return Text(4);
    }
  }

  std::string VersionFor(ResourceType type, const std::string& name) {
    const ResourceMap& available = Snapshot().Of(type);
    switch (in_.ConsumeIntegralInRange(0, 3)) {
      case 0:
      case 1:
        if (auto it = available.find(name); it != available.end()) {
          return it->second->version;
        }
        return "gone";
      case 2:
        return "";
      default:
        return "stale";
    }
  }

  void Request() {
    const std::string type_url = TypeUrlChoice();
    const RequestOutcome expected = OutcomeForType(type_url, only_type_);
    const std::string nonce = NonceFor(expected.type);
    const bool nack = in_.ConsumeIntegralInRange(0, 5) == 0;
    if (delta_) {
      DeltaDiscoveryRequest request;
      request.set_type_url(type_url);
      request.set_response_nonce(nonce);
      if (in_.ConsumeIntegralInRange(0, 2) != 0) {
        for (const std::string& name : NameList()) {
          request.add_resource_names_subscribe(name);
        }
      }
      if (in_.ConsumeIntegralInRange(0, 3) == 0) {
        for (const std::string& name : NameList()) {
          request.add_resource_names_unsubscribe(name);
        }
      }
      if (expected.type && in_.ConsumeIntegralInRange(0, 2) == 0) {
        auto& versions = *request.mutable_initial_resource_versions();
        for (const std::string& name : NameList()) {
          versions[name] = VersionFor(*expected.type, name);
        }
      }
      if (nack) {
        request.mutable_error_detail()->set_code(3);
        request.mutable_error_detail()->set_message("rejected by the fuzzer");
      }
      ApplyDelta(request);
    } else {
      DiscoveryRequest request;
      request.set_type_url(type_url);
      request.set_response_nonce(nonce);
      std::vector<std::string> names;
      const int mode = in_.ConsumeIntegralInRange(0, 3);
      if (mode <= 1 && expected.type) {
        names = clients_[Index(*expected.type)].names;  // as an ACK would
      } else if (mode == 2) {
        names = NameList();
      }
      for (const std::string& name : names) {
        request.add_resource_names(name);
      }
      request.set_version_info(in_.ConsumeBool() ? "" : "some-version");
      if (nack) {
        request.mutable_error_detail()->set_code(3);
        request.mutable_error_detail()->set_message("rejected by the fuzzer");
      }
      ApplySotw(request);
    }
  }

  // --- applying requests
  // --------------------------------------------------------

  // Checks the outcome of a request of `type` and settles the response it
  // answers on the client's side. Returns the client's state of the type.
  ClientType& Answered(ResourceType type, const RequestOutcome& outcome,
                       const std::string& nonce, bool nack) {
    ClientType& client = clients_[Index(type)];
    const bool first = !client.requested;
    client.requested = true;
    const bool answers =
        !first && client.in_flight && nonce == client.in_flight->nonce;
    FUZZ_CHECK((outcome.kind == RequestKind::kInitial) == first);
    if (answers) {
      FUZZ_CHECK(outcome.kind ==
                 (nack ? RequestKind::kNack : RequestKind::kAck));
    } else {
      FUZZ_CHECK(outcome.kind != RequestKind::kAck &&
                 outcome.kind != RequestKind::kNack);
    }
    if (!answers) {
      return client;
    }
    Sent response = std::move(*client.in_flight);
    client.in_flight.reset();
    // SotW remembers rejection from real responses only; delta from any.
    if (delta_ || !response.heartbeat) {
      client.last_answer_nack = nack;
    }
    if (!delta_ && type == kCds && !response.heartbeat) {
      client.pinned.clear();
      if (nack) {
        // What the NACK can be about: the clusters not held at this version.
        std::set<std::string, std::less<>> candidates;
        for (const ResourcePtr& resource : response.resources) {
          auto held = client.held.find(resource->name);
          if (held == client.held.end() || held->second != resource->version) {
            candidates.insert(resource->name);
          }
        }
        if (Snapshot().key.flavor != Flavor::kGrpc || candidates.size() == 1) {
          client.pinned = std::move(candidates);
        }
      }
    }
    if (nack) {
      nacked_ = true;
      if (delta_ && !response.heartbeat) {
        for (const ResourcePtr& resource : response.resources) {
          client.rejected[resource->name] = resource->version;
        }
      }
      return client;  // the client keeps what it had
    }
    const bool full_state = !delta_ && IsFullState(type);
    if (full_state) {
      client.held.clear();
    }
    for (const ResourcePtr& resource : response.resources) {
      // A client ignores what it unsubscribed from while the response was
      // on its way.
      if (full_state || (Wanted(type, resource->name) &&
                         !response.ignored.contains(resource->name))) {
        client.held[resource->name] = resource->version;
      }
    }
    for (const std::string& name : response.removed) {
      client.held.erase(name);
    }
    return client;
  }

  RequestOutcome Expect(const RequestOutcome& outcome,
                        const std::string& type_url) {
    const RequestOutcome expected = OutcomeForType(type_url, only_type_);
    FUZZ_CHECK(outcome.type == expected.type);
    FUZZ_CHECK(outcome.error.empty() == expected.error.empty());
    if (!outcome.error.empty()) {
      failed_ = true;  // the server ends the stream with INVALID_ARGUMENT
    }
    if (!outcome.type) {
      FUZZ_CHECK(outcome.kind == RequestKind::kIgnored);
    }
    return outcome;
  }

  void ApplySotw(const DiscoveryRequest& request) {
    const RequestOutcome outcome =
        Expect(sotw_.OnRequest(request), request.type_url());
    if (Tracing()) {
      std::fprintf(stderr, "request {%s} -> %s\n",
                   request.ShortDebugString().c_str(),
                   std::string(RequestKindName(outcome.kind)).c_str());
    }
    if (!outcome.type) {
      return;
    }
    const ResourceType type = *outcome.type;
    ClientType& client = Answered(type, outcome, request.response_nonce(),
                                  request.has_error_detail());
    client.names.assign(request.resource_names().begin(),
                        request.resource_names().end());
    if (!IsFullState(type)) {
      // The client drops the assignments and routes it no longer asks for.
      const std::set<std::string, std::less<>> asked(client.names.begin(),
                                                     client.names.end());
      std::erase_if(client.held, [&asked](const auto& entry) {
        return !asked.contains(entry.first);
      });
    }
  }

  void ApplyDelta(const DeltaDiscoveryRequest& request) {
    const RequestOutcome expected =
        OutcomeForType(request.type_url(), only_type_);
    std::set<std::string, std::less<>> names_before;
    bool wildcard_before = false;
    if (expected.type) {
      names_before = Names(*expected.type);
      wildcard_before = Wildcard(*expected.type);
    }
    const RequestOutcome outcome =
        Expect(delta_state_.OnRequest(request), request.type_url());
    if (Tracing()) {
      std::fprintf(stderr, "request {%s} -> %s\n",
                   request.ShortDebugString().c_str(),
                   std::string(RequestKindName(outcome.kind)).c_str());
    }
    if (!outcome.type) {
      return;
    }
    const ResourceType type = *outcome.type;
    const bool first = !clients_[Index(type)].requested;
    ClientType& client = Answered(type, outcome, request.response_nonce(),
                                  request.has_error_detail());
    const auto& subscribe = request.resource_names_subscribe();
    const auto& unsubscribe = request.resource_names_unsubscribe();
    const bool star_subscribed =
        std::find(subscribe.begin(), subscribe.end(), "*") != subscribe.end();
    const bool star_unsubscribed =
        std::find(unsubscribe.begin(), unsubscribe.end(), "*") !=
        unsubscribe.end();
    // The client drops what it unsubscribes from, and what only the
    // wildcard gave it when it leaves the wildcard.
    for (const std::string& name : unsubscribe) {
      if (names_before.contains(name) ||
          std::find(subscribe.begin(), subscribe.end(), name) !=
              subscribe.end()) {
        client.held.erase(name);
      }
    }
    const bool star_dropped =
        star_unsubscribed && (wildcard_before || star_subscribed);
    if (star_dropped) {
      std::erase_if(client.held, [this, type](const auto& entry) {
        return !Names(type).contains(entry.first);
      });
    }
    if (client.in_flight) {
      for (const ResourcePtr& resource : client.in_flight->resources) {
        const std::string& name = resource->name;
        const bool unsubscribed =
            std::find(unsubscribe.begin(), unsubscribe.end(), name) !=
                unsubscribe.end() &&
            (names_before.contains(name) ||
             std::find(subscribe.begin(), subscribe.end(), name) !=
                 subscribe.end());
        if (unsubscribed || (star_dropped && !Names(type).contains(name))) {
          client.in_flight->ignored.insert(name);
        }
      }
    }
    // A changed subscription may bring a rejected version back.
    for (const std::string& name : subscribe) {
      client.rejected.erase(name);
    }
    for (const std::string& name : unsubscribe) {
      client.rejected.erase(name);
    }
    if (star_subscribed || star_unsubscribed) {
      client.rejected.clear();
    }
    if (first) {
      // A reconnecting client holds what it lists (of what it subscribes).
      for (const auto& [name, version] : request.initial_resource_versions()) {
        if (name != "*" && Wanted(type, name)) {
          client.held[name] = version;
        }
      }
    }
  }

  // --- responses
  // ----------------------------------------------------------------

  void Poll() {
    if (delta_) {
      Received(ToSent(delta_state_.Poll(Snapshot())), true);
    } else {
      Received(ToSent(sotw_.Poll(Snapshot()), false), true);
    }
  }

  void Heartbeats() {
    if (delta_) {
      Received(ToSent(delta_state_.Heartbeats(Snapshot())), false);
    } else if (ttl_.resource_in_sotw) {  // only such clients get them
      Received(ToSent(sotw_.Heartbeats(Snapshot()), true), false);
    }
  }

  std::vector<Sent> ToSent(const std::vector<PendingResponse>& out,
                           bool heartbeat) {
    std::vector<Sent> sent;
    for (const PendingResponse& response : out) {
      FUZZ_CHECK(!response.version_info.empty());
      if (response.whole) {
        FUZZ_CHECK(response.whole->size() == response.resources.size());
      }
      DiscoveryResponse decoded;
      FUZZ_CHECK(
          decoded.ParseFromString(Bytes(EncodeResponse(response, ttl_))));
      FUZZ_CHECK(decoded.nonce() == response.nonce);
      FUZZ_CHECK(decoded.version_info() == response.version_info);
      FUZZ_CHECK(decoded.type_url() == TypeUrl(response.type));
      FUZZ_CHECK(decoded.resources_size() ==
                 static_cast<int>(response.resources.size()));
      sent.push_back(Sent{response.type,
                          response.nonce,
                          response.resources,
                          {},
                          heartbeat,
                          {}});
    }
    return sent;
  }

  std::vector<Sent> ToSent(const std::vector<PendingDeltaResponse>& out) {
    std::vector<Sent> sent;
    for (const PendingDeltaResponse& response : out) {
      // Only for debugging; a heartbeat before any response has none.
      FUZZ_CHECK(response.heartbeat || !response.system_version_info.empty());
      DeltaDiscoveryResponse decoded;
      FUZZ_CHECK(
          decoded.ParseFromString(Bytes(EncodeDeltaResponse(response, ttl_))));
      FUZZ_CHECK(decoded.nonce() == response.nonce);
      FUZZ_CHECK(decoded.system_version_info() == response.system_version_info);
      FUZZ_CHECK(decoded.type_url() == TypeUrl(response.type));
      FUZZ_CHECK(decoded.resources_size() ==
                 static_cast<int>(response.resources.size()));
      for (int i = 0; i < decoded.resources_size(); ++i) {
        const auto& resource = decoded.resources(i);
        FUZZ_CHECK(resource.name() == response.resources[i]->name);
        FUZZ_CHECK(resource.version() == response.resources[i]->version);
        FUZZ_CHECK(resource.has_resource() == !response.heartbeat);
      }
      FUZZ_CHECK(decoded.removed_resources_size() ==
                 static_cast<int>(response.removed.size()));
      sent.push_back(Sent{response.type,
                          response.nonce,
                          response.resources,
                          response.removed,
                          response.heartbeat,
                          {}});
    }
    return sent;
  }

  void Received(std::vector<Sent> out, bool polled) {
    ClientType& clusters = clients_[Index(kCds)];
    bool clusters_busy =
        clusters.in_flight || (delta_ && clusters.last_answer_nack);
    int last_index = -1;
    for (Sent& response : out) {
      if (Tracing()) {
        std::fprintf(stderr, "  response %s\n", Describe(response).c_str());
      }
      const ResourceType type = response.type;
      FUZZ_CHECK(static_cast<int>(Index(type)) > last_index);  // ADS order
      last_index = static_cast<int>(Index(type));
      FUZZ_CHECK(!only_type_ || type == *only_type_);
      FUZZ_CHECK(response.heartbeat == !polled);
      ClientType& client = clients_[Index(type)];
      FUZZ_CHECK(client.requested);
      FUZZ_CHECK(!client.in_flight);  // one response per type in flight
      uint64_t nonce = 0;
      const char* end = response.nonce.data() + response.nonce.size();
      FUZZ_CHECK(std::from_chars(response.nonce.data(), end, nonce).ptr == end);
      FUZZ_CHECK(nonce > last_nonce_);
      last_nonce_ = nonce;
      if (polled && (type == kLds || type == kRds)) {
        // Routes may name clusters the client has not accepted yet.
        FUZZ_CHECK(!clusters_busy);
        if (!delta_ && clusters.last_answer_nack) {
          for (const ResourcePtr& resource : response.resources) {
            auto kept = client.last_full.find(resource->name);
            if (kept != client.last_full.end() && kept->second == resource) {
              continue;  // an LDS response may carry what the client has
            }
            for (const std::string& cluster : resource->clusters) {
              FUZZ_CHECK(!clusters.pinned.contains(cluster));
            }
          }
        }
      }
      if (type == kCds) {
        clusters_busy = true;
      }
      if (response.heartbeat) {
        CheckHeartbeat(client, response);
      } else {
        CheckContent(client, response);
      }
      client.last_nonce = response.nonce;
      client.in_flight = std::move(response);
    }
  }

  void CheckContent(ClientType& client, const Sent& response) {
    const ResourceType type = response.type;
    const ResourceMap& available = Snapshot().Of(type);
    std::set<std::string, std::less<>> names;
    for (const ResourcePtr& resource : response.resources) {
      FUZZ_CHECK(names.insert(resource->name).second);
      auto it = available.find(resource->name);
      const bool current =
          it != available.end() && it->second->version == resource->version;
      if (!current) {
        // Only a SotW CDS response keeps clusters of the previous one, until
        // listeners and routes stopped using them.
        FUZZ_CHECK(!delta_ && type == kCds);
        auto kept = client.last_full.find(resource->name);
        FUZZ_CHECK(kept != client.last_full.end() && kept->second == resource);
        continue;
      }
      FUZZ_CHECK(Wanted(type, resource->name) ||
                 (!delta_ && type == kCds &&
                  client.last_full.contains(resource->name)));
    }
    if (delta_) {
      std::set<std::string, std::less<>> removed;
      for (const std::string& name : response.removed) {
        FUZZ_CHECK(removed.insert(name).second);
        FUZZ_CHECK(!names.contains(name));
        client.rejected.erase(name);
      }
      for (const ResourcePtr& resource : response.resources) {
        auto rejected = client.rejected.find(resource->name);
        if (rejected != client.rejected.end()) {
          // Never the bytes the client rejected again.
          FUZZ_CHECK(rejected->second != resource->version);
          client.rejected.erase(rejected);
        }
      }
      if (type == kCds) {
        // A changed cluster makes the server send its assignment again.
        for (const ResourcePtr& resource : response.resources) {
          clients_[Index(kEds)].rejected.erase(resource->name);
        }
      }
      return;
    }
    if (IsFullState(type)) {
      // State of the world: all the client wants that exists, in name order.
      for (const auto& [name, resource] : available) {
        if (Wanted(type, name)) {
          FUZZ_CHECK(names.contains(name));
        }
      }
      FUZZ_CHECK(std::is_sorted(response.resources.begin(),
                                response.resources.end(),
                                [](const ResourcePtr& a, const ResourcePtr& b) {
                                  return a->name < b->name;
                                }));
      client.last_full.clear();
      for (const ResourcePtr& resource : response.resources) {
        client.last_full.emplace(resource->name, resource);
      }
    }
  }

  void CheckHeartbeat(const ClientType& client, const Sent& response) const {
    FUZZ_CHECK(response.removed.empty());
    if (!delta_ && IsFullState(response.type)) {
      // The whole state the client accepted last, nothing else.
      FUZZ_CHECK(response.resources.size() == client.held.size());
    }
    for (const ResourcePtr& resource : response.resources) {
      auto held = client.held.find(resource->name);
      FUZZ_CHECK(held != client.held.end());
      FUZZ_CHECK(held->second == resource->version);
    }
  }

  // --- the client's answers and the snapshots
  // -----------------------------------

  void NextGeneration() {
    // Streams only move forward, but may skip generations.
    const size_t step = in_.ConsumeIntegralInRange<size_t>(1, 3);
    generation_ = std::min(generation_ + step, generations_.size() - 1);
    if (Tracing()) {
      std::fprintf(stderr, "generation %zu (content %zu)\n", generation_,
                   kGenerationContent[generation_]);
    }
  }

  void Answer(ResourceType type, bool ack) {
    const ClientType& client = clients_[Index(type)];
    if (!client.in_flight) {
      return;
    }
    const std::string type_url(TypeUrl(type));
    if (delta_) {
      DeltaDiscoveryRequest request;
      request.set_type_url(type_url);
      request.set_response_nonce(client.in_flight->nonce);
      if (!ack) {
        request.mutable_error_detail()->set_code(3);
      }
      ApplyDelta(request);
    } else {
      DiscoveryRequest request;
      request.set_type_url(type_url);
      request.set_response_nonce(client.in_flight->nonce);
      for (const std::string& name : client.names) {
        request.add_resource_names(name);
      }
      if (!ack) {
        request.mutable_error_detail()->set_code(3);
      }
      ApplySotw(request);
    }
  }

  void AnswerAll(bool ack) {
    for (ResourceType type : kAllResourceTypes) {
      Answer(type, ack);
    }
  }

  // The client ACKs everything until the server has nothing more to say;
  // then it must hold what the snapshot has for it.
  void Drain() {
    if (Tracing()) {
      std::fprintf(stderr, "drain\n");
    }
    bool quiet = false;
    for (int round = 0; round < 16 && !quiet; ++round) {
      AnswerAll(true);
      Poll();
      quiet = std::none_of(
          clients_.begin(), clients_.end(),
          [](const ClientType& c) { return c.in_flight.has_value(); });
    }
    FUZZ_CHECK(quiet);
    if (nacked_) {
      return;  // a NACKed version is not sent again: no convergence promised
    }
    for (ResourceType type : kAllResourceTypes) {
      const ClientType& client = clients_[Index(type)];
      if (!client.requested) {
        continue;
      }
      const ResourceMap& available = Snapshot().Of(type);
      for (const auto& [name, resource] : available) {
        if (Wanted(type, name)) {
          auto held = client.held.find(name);
          FUZZ_CHECK(held != client.held.end());
          FUZZ_CHECK(held->second == resource->version);
        }
      }
      if (delta_ || IsFullState(type)) {
        // Nothing else: what vanished or is no longer wanted was removed.
        for (const auto& [name, version] : client.held) {
          FUZZ_CHECK(available.contains(name) && Wanted(type, name));
        }
      }
    }
  }

  FuzzedDataProvider& in_;
  const bool delta_;
  const std::optional<ResourceType> only_type_;
  const std::vector<ViewSnapshotPtr>& generations_;
  const ClientTtl ttl_;
  SotwState sotw_;
  DeltaState delta_state_;
  size_t generation_ = 0;
  std::array<ClientType, kResourceTypeCount> clients_;
  uint64_t last_nonce_ = 0;
  bool failed_ = false;  // the stream was ended with an error
  bool nacked_ = false;  // the client rejected a response
};

}  // namespace
}  // namespace attache

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  // First byte: bit 0 delta; bits 1-3 the service (0-3: one per-type
  // service, 4-7: ADS); bits 4-5 the view; bit 6 TTLs.
  const uint8_t mode = data[0];
  const bool delta = (mode & 1U) != 0;
  const unsigned service = (mode >> 1U) & 7U;
  std::optional<attache::ResourceType> only_type;
  if (service < 4) {
    only_type = attache::kAllResourceTypes[service];
  }
  const auto& chains = attache::Generations();
  const auto& generations = chains[((mode >> 4U) & 3U) % chains.size()];
  const bool ttl = (mode & 0x40U) != 0;
  if (attache::Tracing()) {
    std::fprintf(
        stderr, "%s on %s, view %u%s\n", delta ? "delta" : "sotw",
        only_type ? std::string(attache::ShortName(*only_type)).c_str() : "ADS",
        ((mode >> 4U) & 3U) % 3U, ttl ? ", TTLs" : "");
  }
  FuzzedDataProvider input(data + 1, size - 1);
  attache::StreamFuzz(input, delta, only_type, generations, ttl).Run();
  return 0;
}
