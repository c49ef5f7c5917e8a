#pragma once

#include <grpcpp/security/tls_certificate_verifier.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attache {

// xds.tls.client_names: a client certificate that the client CA signed is
// admitted only when it carries one of the configured names, so that a CA
// shared with other workloads does not let all of them read the mesh's
// configuration. Runs in gRPC's handshake, after the chain was verified.
class ClientNameVerifier final
    : public grpc::experimental::ExternalCertificateVerifier {
 public:
  // `refused` counts the handshakes turned away (for /metrics).
  ClientNameVerifier(std::vector<std::string> allowed,
                     std::shared_ptr<std::atomic<uint64_t>> refused);

  bool Verify(grpc::experimental::TlsCustomVerificationCheckRequest* request,
              std::function<void(grpc::Status)> callback,
              grpc::Status* sync_status) override;
  void Cancel(
      grpc::experimental::TlsCustomVerificationCheckRequest* request) override;

  // True when one of `names` is allowed: equal to an entry, or starting with
  // an entry's text before its final '*'.
  static bool Allowed(const std::vector<std::string>& allowed,
                      const std::vector<std::string_view>& names);

 private:
  const std::vector<std::string> allowed_;
  const std::shared_ptr<std::atomic<uint64_t>> refused_;
  // A client retrying in a loop must not flood the log: one line a second.
  std::atomic<int64_t> last_log_ms_{0};
};

}  // namespace attache
