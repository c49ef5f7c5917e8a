#include "xds/server/client_name_verifier.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace attache {

ClientNameVerifier::ClientNameVerifier(
    std::vector<std::string> allowed,
    std::shared_ptr<std::atomic<uint64_t>> refused)
    : allowed_(std::move(allowed)), refused_(std::move(refused)) {}

bool ClientNameVerifier::Allowed(const std::vector<std::string>& allowed,
                                 const std::vector<std::string_view>& names) {
  for (const std::string& entry : allowed) {
    const bool prefix = !entry.empty() && entry.back() == '*';
    const std::string_view wanted =
        prefix ? std::string_view(entry).substr(0, entry.size() - 1) : entry;
    for (const std::string_view name : names) {
      if (prefix ? name.starts_with(wanted) : name == wanted) {
        return true;
      }
    }
  }
  return false;
}

bool ClientNameVerifier::Verify(
    grpc::experimental::TlsCustomVerificationCheckRequest* request,
    std::function<void(grpc::Status)> /*callback*/, grpc::Status* sync_status) {
  std::vector<std::string_view> names;
  for (const auto& list : {request->uri_names(), request->dns_names()}) {
    for (const grpc::string_ref& name : list) {
      names.emplace_back(name.data(), name.size());
    }
  }
  const grpc::string_ref common_name = request->common_name();
  if (!common_name.empty()) {
    names.emplace_back(common_name.data(), common_name.size());
  }
  if (Allowed(allowed_, names)) {
    *sync_status = grpc::Status::OK;
    return true;
  }
  refused_->fetch_add(1, std::memory_order_relaxed);
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now().time_since_epoch())
          .count();
  int64_t last = last_log_ms_.load(std::memory_order_relaxed);
  if (now_ms - last >= 1000 &&
      last_log_ms_.compare_exchange_strong(last, now_ms)) {
    std::string shown;
    for (const std::string_view name : names) {
      shown += (shown.empty() ? "\"" : ", \"") + std::string(name) + "\"";
    }
    spdlog::warn(
        "xDS TLS: refused a client certificate: none of its names ({}) is in "
        "xds.tls.client_names (attache_xds_tls_refused_clients_total counts "
        "every refusal)",
        shown.empty() ? "none" : shown);
  }
  *sync_status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                              "client certificate name not allowed");
  return true;
}

void ClientNameVerifier::Cancel(
    grpc::experimental::TlsCustomVerificationCheckRequest* /*request*/) {
  // Verify answers at once: nothing is ever pending.
}

}  // namespace attache
