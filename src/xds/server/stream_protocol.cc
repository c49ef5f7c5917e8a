#include "xds/server/stream_protocol.h"

#include <google/protobuf/arena.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include "translate/view.h"
#include "xds/server/delta_state.h"
#include "xds/server/response_encoder.h"
#include "xds/server/sotw_state.h"
#include "xds/server/xds_metrics.h"

namespace attache {
namespace {

template <typename Request>
bool ParseRequest(const grpc::ByteBuffer& bytes, Request* request) {
  grpc::ByteBuffer copy(bytes);  // Deserialize consumes its argument
  request->Clear();
  return grpc::SerializationTraits<Request>::Deserialize(&copy, request).ok();
}

// Debug JSON of one type's state; both protocols keep the same fields.
template <typename TypeState>
nlohmann::json TypeJson(const TypeState& state,
                        const std::set<std::string, std::less<>>& names) {
  nlohmann::json entry = {
      {"wildcard", state.wildcard},
      {"subscribed", names},
      {"sent_version", state.last_version_info},
      {"sent_nonce", state.last_nonce},
      {"acked_version", state.acked_version},
      {"awaiting_ack", !state.inflight_nonce.empty()},
      {"response_count", state.responses},
      {"ack_count", state.acks},
      {"nack_count", state.nacks},
      {"last_nack", nullptr},
  };
  if (state.last_nack) {
    entry["last_nack"] = {{"version_info", state.last_nack->version_info},
                          {"nonce", state.last_nack->nonce},
                          {"code", state.last_nack->code},
                          {"message", state.last_nack->message}};
  }
  return entry;
}

template <typename State>
nlohmann::json TypesJsonOf(const State& state) {
  nlohmann::json types = nlohmann::json::object();
  for (ResourceType type : kAllResourceTypes) {
    const auto& of = state.Of(type);
    if (of.requested) {
      types[std::string(TypeUrl(type))] = TypeJson(of, of.names);
    }
  }
  return types;
}

template <typename Request>
std::string Describe(const Request& request, size_t names) {
  return "names=" + std::to_string(names) +
         " nonce=" + Clipped(request.response_nonce());
}

using Rejection = StreamProtocol::Rejection;

Rejection TooManyNames(size_t names) {
  return {RejectReason::kTooManyNames,
          grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       "a stream may subscribe to at most " +
                           std::to_string(kMaxSubscribedNames) +
                           " resources per type; this request makes it " +
                           std::to_string(names))};
}

// Limits every request shares: the node's size when it is bound.
template <typename Request>
std::optional<Rejection> CheckNode(const Request& request, bool binding) {
  if (binding && request.has_node()) {
    const size_t bytes = request.node().ByteSizeLong();
    if (bytes > kMaxNodeBytes) {
      return Rejection{
          RejectReason::kNodeTooLarge,
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                       "node is " + std::to_string(bytes) + " bytes; at most " +
                           std::to_string(kMaxNodeBytes) + " are accepted")};
    }
  }
  return std::nullopt;
}

// Cuts what the state machines record of a NACK (and nothing they compare).
void ClipRecorded(std::string* text) {
  if (text->size() > kMaxEchoedBytes) {
    *text = Clipped(*text);
  }
}

google::protobuf::ArenaOptions ArenaOptions() {
  google::protobuf::ArenaOptions options;
  options.start_block_size = 4096;  // an ACK naming 100 resources fits
  return options;
}

// What both protocols share: the parsed request, the state machine, and
// everything that only reads them.
template <typename Request, typename State>
class ProtocolBase : public StreamProtocol {
 public:
  explicit ProtocolBase(std::optional<ResourceType> only_type)
      : only_type_(only_type), state_(only_type) {}

  bool Parse(const grpc::ByteBuffer& bytes) override {
    Forget();
    request_ = google::protobuf::Arena::CreateMessage<Request>(&arena_);
    return ParseRequest(bytes, request_);
  }
  const envoy::config::core::v3::Node& RequestNode() const override {
    return request_->node();
  }
  nlohmann::json TypesJson() const override { return TypesJsonOf(state_); }

 protected:
  // Called once a request was applied: an idle stream keeps no request (an
  // ACK's 100 names would hold about 3 KiB per stream). The arena makes a
  // request a few allocations instead of one per name.
  void Forget() {
    request_ = nullptr;
    arena_.Reset();
  }

  google::protobuf::Arena arena_{ArenaOptions()};
  Request* request_ = nullptr;  // on arena_
  const std::optional<ResourceType> only_type_;
  State state_;
};

class SotwProtocol final
    : public ProtocolBase<envoy::service::discovery::v3::DiscoveryRequest,
                          SotwState> {
 public:
  using ProtocolBase::ProtocolBase;

  std::string_view Name() const override { return "sotw"; }
  std::optional<Rejection> CheckLimits(bool binding) const override {
    if (static_cast<size_t>(request_->resource_names_size()) >
        kMaxSubscribedNames) {
      return TooManyNames(request_->resource_names_size());
    }
    return CheckNode(*request_, binding);
  }
  RequestOutcome Apply(std::string* detail) override {
    // version_info is only recorded (with a NACK), never compared.
    ClipRecorded(request_->mutable_version_info());
    if (request_->has_error_detail()) {
      ClipRecorded(request_->mutable_error_detail()->mutable_message());
    }
    RequestOutcome outcome = state_.OnRequest(*request_);
    if (outcome.kind == RequestKind::kNack) {
      *detail = "nonce " + request_->response_nonce() + " (keeps version \"" +
                request_->version_info() +
                "\"): " + request_->error_detail().message();
    } else {
      *detail = Describe(*request_, request_->resource_names_size());
    }
    Forget();
    return outcome;
  }
  void Poll(const ViewSnapshot& snapshot, const ClientTtl& ttl,
            std::deque<grpc::ByteBuffer>* out) override {
    if (ttl.ttl_ms != 0 && ttl.resource_in_sotw) {
      state_.KeepAccepted();
    }
    for (const PendingResponse& response : state_.Poll(snapshot)) {
      XdsMetrics::Get().Pushed(response.type);
      out->push_back(EncodeResponse(response, ttl));
    }
  }
  void Heartbeat(const ViewSnapshot& snapshot, const ClientTtl& ttl,
                 std::deque<grpc::ByteBuffer>* out) override {
    if (!ttl.resource_in_sotw) {
      return;  // nothing it holds has a TTL
    }
    for (const PendingResponse& response : state_.Heartbeats(snapshot)) {
      XdsMetrics::Get().Pushed(response.type);
      out->push_back(EncodeResponse(response, ttl));
    }
  }
};

class DeltaProtocol final
    : public ProtocolBase<envoy::service::discovery::v3::DeltaDiscoveryRequest,
                          DeltaState> {
 public:
  using ProtocolBase::ProtocolBase;

  std::string_view Name() const override { return "delta"; }
  std::optional<Rejection> CheckLimits(bool binding) const override {
    // Subscriptions add up over requests: count what the stream holds too
    // (an upper bound: a name may be subscribed again). An ACK subscribes
    // nothing and cannot go over: no type lookup for it.
    const auto subscribe =
        static_cast<size_t>(request_->resource_names_subscribe_size());
    size_t held = 0;
    if (subscribe > 0) {
      if (auto type = OutcomeForType(request_->type_url(), only_type_).type) {
        held = state_.Of(*type).names.size();
      }
    }
    const auto initial =
        static_cast<size_t>(request_->initial_resource_versions_size());
    if (held + subscribe > kMaxSubscribedNames ||
        initial > kMaxSubscribedNames) {
      return TooManyNames(held + std::max(subscribe, initial));
    }
    return CheckNode(*request_, binding);
  }
  RequestOutcome Apply(std::string* detail) override {
    if (request_->has_error_detail()) {
      ClipRecorded(request_->mutable_error_detail()->mutable_message());
    }
    RequestOutcome outcome = state_.OnRequest(*request_);
    if (outcome.kind == RequestKind::kNack) {
      *detail = "nonce " + request_->response_nonce() + ": " +
                request_->error_detail().message();
    } else {
      *detail = Describe(*request_, request_->resource_names_subscribe_size()) +
                " unsubscribe=" +
                std::to_string(request_->resource_names_unsubscribe_size()) +
                " initial=" +
                std::to_string(request_->initial_resource_versions_size());
    }
    Forget();
    return outcome;
  }
  void Poll(const ViewSnapshot& snapshot, const ClientTtl& ttl,
            std::deque<grpc::ByteBuffer>* out) override {
    for (const PendingDeltaResponse& response : state_.Poll(snapshot)) {
      XdsMetrics::Get().Pushed(response.type);
      out->push_back(EncodeDeltaResponse(response, ttl));
    }
  }
  void Heartbeat(const ViewSnapshot& snapshot, const ClientTtl& ttl,
                 std::deque<grpc::ByteBuffer>* out) override {
    for (const PendingDeltaResponse& response : state_.Heartbeats(snapshot)) {
      XdsMetrics::Get().Pushed(response.type);
      out->push_back(EncodeDeltaResponse(response, ttl));
    }
  }
};

}  // namespace

envoy::config::core::v3::Node BoundNodeOf(
    const envoy::config::core::v3::Node& node) {
  envoy::config::core::v3::Node out;
  out.set_id(node.id());
  out.set_cluster(node.cluster());
  *out.mutable_locality() = node.locality();
  out.set_user_agent_name(node.user_agent_name());
  out.set_user_agent_version(node.user_agent_version());
  *out.mutable_client_features() = node.client_features();
  if (node.has_metadata()) {
    for (const auto& [key, value] : node.metadata().fields()) {
      if (key == kFlavorMetadataKey || key == kRegionMetadataKey ||
          key == kZoneMetadataKey) {
        (*out.mutable_metadata()->mutable_fields())[key] = value;
      }
    }
  }
  return out;
}

std::unique_ptr<StreamProtocol> MakeSotwProtocol(
    std::optional<ResourceType> only_type) {
  return std::make_unique<SotwProtocol>(only_type);
}

std::unique_ptr<StreamProtocol> MakeDeltaProtocol(
    std::optional<ResourceType> only_type) {
  return std::make_unique<DeltaProtocol>(only_type);
}

}  // namespace attache
