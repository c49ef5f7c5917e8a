#include "xds/server/sotw_stream.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <spdlog/spdlog.h>

#include "util/time_format.h"
#include "xds/server/response_encoder.h"
#include "xds/server/stream_registry.h"

namespace attache {
grpc::ServerGenericBidiReactor* SotwStream::Open(
    StreamRegistry* registry, grpc::GenericCallbackServerContext* context,
    std::optional<ResourceType> only_type) {
  auto stream =
      std::make_shared<SotwStream>(registry, only_type, context->peer());
  stream->self_ = stream;
  stream->StartRead(&stream->read_buffer_);
  return stream.get();
}

SotwStream::SotwStream(StreamRegistry* registry,
                       std::optional<ResourceType> only_type, std::string peer)
    : registry_(registry),
      peer_(std::move(peer)),
      connected_at_(std::chrono::system_clock::now()),
      state_(only_type) {}

void SotwStream::OnReadDone(bool ok) {
  if (!ok) {
    // The client half-closed or went away: there is nothing left to answer.
    Lock lock(mu_);
    FinishWith(lock, grpc::Status::OK);
    return;
  }
  HandleRequest(read_buffer_);
  Lock lock(mu_);
  if (!finish_status_ && !finished_) {
    lock.unlock();
    StartRead(&read_buffer_);
  }
}

void SotwStream::HandleRequest(const grpc::ByteBuffer& bytes) {
  envoy::service::discovery::v3::DiscoveryRequest request;
  grpc::ByteBuffer copy(bytes);  // Deserialize consumes its argument
  const grpc::Status parsed =
      grpc::SerializationTraits<decltype(request)>::Deserialize(&copy,
                                                                &request);
  Lock lock(mu_);
  if (!parsed.ok()) {
    spdlog::warn("xds: {} sent a request that does not parse: {}", peer_,
                 parsed.error_message());
    FinishWith(lock, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "DiscoveryRequest does not parse"));
    return;
  }
  if (!bound_) {
    // The node comes with the first request and stays bound to the stream.
    node_ = request.node();
    flavor_ = FlavorOf(node_);
    bound_ = true;
    lock.unlock();
    SnapshotSetPtr snapshots = registry_->Register(shared_from_this());
    lock.lock();
    if (!snapshot_ || snapshot_->generation < snapshots->generation) {
      snapshot_ = snapshots->For(flavor_);
    }
    spdlog::info("xds: client {} ({}, {}) connected from {}", node_.id(),
                 FlavorName(flavor_), node_.user_agent_name(), peer_);
  }
  const SotwState::RequestOutcome outcome = state_.OnRequest(request);
  if (!outcome.error.empty()) {
    spdlog::warn("xds: client {}: {}", node_.id(), outcome.error);
    FinishWith(lock,
               grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, outcome.error));
    return;
  }
  if (!outcome.type) {
    spdlog::debug("xds: client {} asked for unserved type {}", node_.id(),
                  request.type_url());
    return;
  }
  const ResourceType type = *outcome.type;
  if (outcome.kind == SotwState::RequestKind::kNack) {
    spdlog::warn(
        "xds: client {} rejected {} nonce {} (keeps version \"{}\"): {}",
        node_.id(), ShortName(type), request.response_nonce(),
        request.version_info(), request.error_detail().message());
  } else {
    spdlog::debug("xds: client {} {} {} names={} nonce={}", node_.id(),
                  ShortName(type), RequestKindName(outcome.kind),
                  request.resource_names_size(), request.response_nonce());
  }
  QueueResponses(lock);
  Pump(lock);
}

void SotwStream::OnSnapshot(const SnapshotSetPtr& snapshots) {
  Lock lock(mu_);
  if (!bound_ || finished_ || finish_status_) {
    return;
  }
  const ViewSnapshotPtr& next = snapshots->For(flavor_);
  if (snapshot_ && snapshot_->generation >= next->generation) {
    return;
  }
  snapshot_ = next;
  QueueResponses(lock);
  Pump(lock);
}

void SotwStream::QueueResponses(Lock& /*lock*/) {
  if (!snapshot_) {
    return;
  }
  for (const PendingResponse& response : state_.Poll(*snapshot_)) {
    spdlog::debug("xds: -> {} {} version {} nonce {} ({} resources)",
                  node_.id(), ShortName(response.type), response.version_info,
                  response.nonce, response.resources.size());
    write_queue_.push_back(EncodeResponse(response));
  }
}

void SotwStream::Pump(Lock& lock) {
  if (writing_ || finished_) {
    return;
  }
  if (finish_status_) {
    finished_ = true;
    const grpc::Status status = *finish_status_;
    lock.unlock();
    Finish(status);
    return;
  }
  if (write_queue_.empty()) {
    return;
  }
  writing_ = true;
  const grpc::ByteBuffer* next = &write_queue_.front();
  lock.unlock();
  StartWrite(next);
}

void SotwStream::FinishWith(Lock& lock, grpc::Status status) {
  if (!finish_status_) {
    finish_status_ = std::move(status);
  }
  // Unsent responses are dropped; the one being written stays until done.
  while (write_queue_.size() > (writing_ ? 1U : 0U)) {
    write_queue_.pop_back();
  }
  Pump(lock);
}

void SotwStream::OnWriteDone(bool ok) {
  Lock lock(mu_);
  writing_ = false;
  write_queue_.pop_front();
  if (!ok) {
    FinishWith(lock,
               grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
    return;
  }
  Pump(lock);
}

void SotwStream::OnDone() {
  std::string node_id;
  {
    Lock lock(mu_);
    finished_ = true;
    write_queue_.clear();
    node_id = node_.id();
  }
  spdlog::info("xds: client {} disconnected ({})", node_id, peer_);
  registry_->Unregister(this);
  // May destroy this object: nothing below may touch members.
  auto keep_until_return = std::move(self_);
}

nlohmann::json SotwStream::DebugJson() const {
  Lock lock(mu_);
  nlohmann::json client = {
      {"node_id", node_.id()},
      {"node_cluster", node_.cluster()},
      {"user_agent", node_.user_agent_name()},
      {"flavor", FlavorName(flavor_)},
      {"peer", peer_},
      {"connected_at", FormatUtc(connected_at_)},
      {"locality",
       {{"region", node_.locality().region()},
        {"zone", node_.locality().zone()},
        {"sub_zone", node_.locality().sub_zone()}}},
  };
  nlohmann::json types = nlohmann::json::object();
  for (ResourceType type : kAllResourceTypes) {
    const TypeState& state = state_.Of(type);
    if (!state.requested) {
      continue;
    }
    nlohmann::json entry = {
        {"wildcard", state.wildcard},
        {"subscribed", state.names},
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
    types[std::string(TypeUrl(type))] = std::move(entry);
  }
  client["types"] = std::move(types);
  return client;
}

}  // namespace attache
