#include "xds/server/xds_stream.h"

#include <spdlog/spdlog.h>

#include "util/budgeted_log.h"
#include "util/time_format.h"
#include "xds/server/stream_registry.h"
#include "xds/server/xds_metrics.h"

namespace attache {
namespace {

// Lines a client can cause, at most this many per window each (for all
// clients together); beyond that at debug level only, and counted: a hostile
// client cannot flood the log, and the metrics still count every event.
constexpr int kLinesPerWindow = 10;
constexpr std::chrono::seconds kLogWindow(10);

LogBudget& ClientErrorLog() {
  static auto* budget = new LogBudget(kLinesPerWindow, kLogWindow);
  return *budget;
}
LogBudget& NackLog() {
  static auto* budget = new LogBudget(kLinesPerWindow, kLogWindow);
  return *budget;
}
// Connects and disconnects: a fleet that restarts at once is worth a
// burst of lines, a connect loop is not.
LogBudget& ConnectionLog() {
  static auto* budget = new LogBudget(10 * kLinesPerWindow, kLogWindow);
  return *budget;
}

template <typename... Args>
void WarnAboutClient(spdlog::format_string_t<Args...> format, Args&&... args) {
  LogBudgeted(ClientErrorLog(), spdlog::level::warn,
              "client errors (see attache_xds_rejected_requests_total)", format,
              std::forward<Args>(args)...);
}

}  // namespace

grpc::ServerGenericBidiReactor* XdsStream::Open(
    StreamRegistry* registry, grpc::GenericCallbackServerContext* context,
    std::unique_ptr<StreamProtocol> protocol) {
  auto stream = std::make_shared<XdsStream>(registry, std::move(protocol),
                                            context->peer());
  stream->self_ = stream;
  stream->StartRead(&stream->read_buffer_);
  return stream.get();
}

XdsStream::XdsStream(StreamRegistry* registry,
                     std::unique_ptr<StreamProtocol> protocol, std::string peer)
    : registry_(registry),
      peer_(std::move(peer)),
      connected_at_(std::chrono::system_clock::now()),
      protocol_(std::move(protocol)) {}

void XdsStream::OnReadDone(bool ok) {
  if (!ok) {
    // The client half-closed or went away: there is nothing left to answer.
    Lock lock(mu_);
    FinishWith(lock, grpc::Status::OK);
    return;
  }
  HandleRequest(read_buffer_);
  // An idle stream would otherwise keep its last request's bytes (up to
  // kMaxRequestBytes) until the next one arrives.
  read_buffer_.Clear();
  Lock lock(mu_);
  if (!finish_status_ && !finished_) {
    lock.unlock();
    StartRead(&read_buffer_);
  }
}

void XdsStream::HandleRequest(const grpc::ByteBuffer& bytes) {
  Lock lock(mu_);
  if (!protocol_->Parse(bytes)) {
    Reject(lock, RejectReason::kUnparsable,
           grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "request does not parse"));
    return;
  }
  if (auto rejection = protocol_->CheckLimits(!bound_)) {
    Reject(lock, rejection->reason, std::move(rejection->status));
    return;
  }
  if (!bound_) {
    Bind(lock);
  }
  std::string detail;
  const RequestOutcome outcome = protocol_->Apply(&detail);
  if (!outcome.error.empty()) {
    Reject(lock, RejectReason::kInvalid,
           grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        Clipped(outcome.error)));
    return;
  }
  if (!outcome.type) {
    spdlog::debug("xds: client {} asked for a type attache does not serve",
                  node_.id());
    return;
  }
  if (outcome.kind == RequestKind::kNack) {
    XdsMetrics::Get().Nacked(*outcome.type);
    LogBudgeted(NackLog(), spdlog::level::warn,
                "NACK lines (see attache_xds_nacks_total)",
                "xds: client {} rejected {} {}", Clipped(node_.id()),
                ShortName(*outcome.type), detail);
  } else {
    spdlog::debug("xds: client {} {} {} {} {}", Clipped(node_.id()),
                  protocol_->Name(), ShortName(*outcome.type),
                  RequestKindName(outcome.kind), detail);
  }
  QueueResponses(lock);
  Pump(lock);
}

void XdsStream::Bind(Lock& lock) {
  // The node comes with the first request and stays bound to the stream.
  node_ = BoundNodeOf(protocol_->RequestNode());
  view_ = ViewKeyOf(node_);
  ttl_ = registry_->TtlFor(node_, view_.flavor);
  bound_ = true;
  lock.unlock();
  const SnapshotSetPtr snapshots = registry_->Register(shared_from_this());
  // Outside the lock: the first client of a view translates it.
  ViewSnapshotPtr view = snapshots->View(view_);
  lock.lock();
  if (!snapshot_ || snapshot_->generation < view->generation) {
    snapshot_ = std::move(view);
  }
  LogBudgeted(
      ConnectionLog(), spdlog::level::info,
      "connect and disconnect lines (see attache_xds_connected_clients)",
      "xds: client {} ({} {}, view {}) connected from {}", Clipped(node_.id()),
      Clipped(node_.user_agent_name()), protocol_->Name(), ViewName(view_),
      peer_);
}

void XdsStream::OnSnapshot(const SnapshotSetPtr& snapshots) {
  Lock lock(mu_);
  if (!bound_ || finished_ || finish_status_) {
    return;
  }
  if (snapshot_ && snapshot_->generation >= snapshots->generation()) {
    return;
  }
  const ViewKey key = view_;
  lock.unlock();
  // Outside the lock: the first client of a view translates it.
  ViewSnapshotPtr next = snapshots->View(key);
  lock.lock();
  if (finished_ || finish_status_ ||
      (snapshot_ && snapshot_->generation >= next->generation)) {
    return;
  }
  snapshot_ = std::move(next);
  QueueResponses(lock);
  Pump(lock);
}

void XdsStream::Heartbeat() {
  Lock lock(mu_);
  if (!bound_ || finished_ || finish_status_ || ttl_.ttl_ms == 0 ||
      !snapshot_) {
    return;
  }
  protocol_->Heartbeat(*snapshot_, ttl_, &write_queue_);
  queued_at_.resize(write_queue_.size(), std::chrono::steady_clock::now());
  LimitQueue(lock);
  Pump(lock);
}

void XdsStream::QueueResponses(Lock& lock) {
  if (!snapshot_) {
    return;
  }
  protocol_->Poll(*snapshot_, ttl_, &write_queue_);
  queued_at_.resize(write_queue_.size(), std::chrono::steady_clock::now());
  LimitQueue(lock);
}

void XdsStream::LimitQueue(Lock& /*lock*/) {
  if (write_queue_.size() <= kMaxQueuedResponses) {
    return;
  }
  XdsMetrics::Get().Rejected(RejectReason::kUnreadResponses);
  WarnAboutClient(
      "xds: client {} ({}) ended: {} responses wait to be written; it ACKs "
      "responses it has not read",
      Clipped(node_.id()), peer_, write_queue_.size());
  // The status goes out once the write in progress completes, if ever; until
  // then the stream holds that one response, not every later version.
  MarkFinish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "too many responses unread"));
}

void XdsStream::Reject(Lock& lock, RejectReason reason, grpc::Status status) {
  XdsMetrics::Get().Rejected(reason);
  WarnAboutClient("xds: {} stream from {} (node \"{}\") refused: {}",
                  protocol_->Name(), peer_, Clipped(node_.id()),
                  status.error_message());
  FinishWith(lock, std::move(status));
}

void XdsStream::Pump(Lock& lock) {
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

void XdsStream::FinishWith(Lock& lock, grpc::Status status) {
  MarkFinish(std::move(status));
  Pump(lock);
}

void XdsStream::MarkFinish(grpc::Status status) {
  if (!finish_status_) {
    finish_status_ = std::move(status);
  }
  // Unsent responses are dropped; the one being written stays until done.
  while (write_queue_.size() > (writing_ ? 1U : 0U)) {
    write_queue_.pop_back();
    queued_at_.pop_back();
  }
}

void XdsStream::OnWriteDone(bool ok) {
  Lock lock(mu_);
  writing_ = false;
  write_queue_.pop_front();
  if (ok) {
    XdsMetrics::Get().Written(std::chrono::steady_clock::now() -
                              queued_at_.front());
  }
  queued_at_.pop_front();
  if (!ok) {
    FinishWith(lock,
               grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"));
    return;
  }
  Pump(lock);
}

void XdsStream::OnDone() {
  std::string node_id;
  bool bound = false;
  {
    Lock lock(mu_);
    finished_ = true;
    write_queue_.clear();
    queued_at_.clear();
    node_id = Clipped(node_.id());
    bound = bound_;
  }
  // A stream that never bound a node never said "connected" either.
  if (bound) {
    LogBudgeted(
        ConnectionLog(), spdlog::level::info,
        "connect and disconnect lines (see attache_xds_connected_clients)",
        "xds: client {} disconnected ({})", node_id, peer_);
  } else {
    spdlog::debug("xds: client {} disconnected ({})", node_id, peer_);
  }
  registry_->Unregister(this);
  // May destroy this object: nothing below may touch members.
  auto keep_until_return = std::move(self_);
}

std::optional<envoy::config::core::v3::Node> XdsStream::BoundNode() const {
  Lock lock(mu_);
  if (!bound_) {
    return std::nullopt;
  }
  return node_;
}

nlohmann::json XdsStream::DebugJson() const {
  Lock lock(mu_);
  // Node strings are the client's: up to kMaxNodeBytes each, clipped here
  // as in the log so 100 clients cannot make this page 100 MiB.
  return {
      {"node_id", Clipped(node_.id())},
      {"node_cluster", Clipped(node_.cluster())},
      {"user_agent", Clipped(node_.user_agent_name())},
      {"protocol", protocol_->Name()},
      {"flavor", FlavorName(view_.flavor)},
      {"view", ViewJson(view_)},
      {"ttl_ms", ttl_.ttl_ms},
      {"peer", peer_},
      {"connected_at", FormatUtc(connected_at_)},
      {"locality",
       {{"region", Clipped(node_.locality().region())},
        {"zone", Clipped(node_.locality().zone())},
        {"sub_zone", Clipped(node_.locality().sub_zone())}}},
      {"types", protocol_->TypesJson()},
      // Responses not yet written: more than a few means a slow reader.
      {"queued_responses", write_queue_.size()},
      {"closing", finish_status_.has_value()},
  };
}

}  // namespace attache
