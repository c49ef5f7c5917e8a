#include "xds/server/tls_credentials.h"

#include <fcntl.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "util/duration.h"
#include "util/time_format.h"
#include "xds/server/client_name_verifier.h"

namespace attache {
namespace {

// How often gRPC's provider looks at the in-memory files (its minimum):
// a published certificate reaches new handshakes within this.
constexpr unsigned kProviderRefreshSeconds = 1;
// A rotation may be half done when it is read (the key replaced, the
// certificate not yet); a problem is only reported if it is still there
// this much later.
constexpr std::chrono::milliseconds kRecheckDelay{250};

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// In-memory files (memfd) whose path, /proc/self/fd/N, stays the same while
// their content is replaced at once: every content is a new memfd, moved onto
// N with dup3, so a reader opens either the old content or the new, whole.
//
// They are never closed: gRPC's provider reads the path until gRPC lets go of
// the provider, on gRPC's own threads and only some time after the server is
// gone; a closed N could by then name another file.
int CreateMemoryFile(const char* name, const std::string& content) {
  const int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) {
    throw std::runtime_error(std::string("cannot create the in-memory ") +
                             name + ": " + ErrnoText(errno));
  }
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t done =
        write(fd, content.data() + written, content.size() - written);
    if (done < 0 && errno == EINTR) {
      continue;
    }
    if (done <= 0) {
      const int error = errno;
      close(fd);
      throw std::runtime_error(std::string("cannot write the in-memory ") +
                               name + ": " + ErrnoText(error));
    }
    written += static_cast<size_t>(done);
  }
  return fd;
}

void ReplaceMemoryFile(int fd, const char* name, const std::string& content) {
  const int fresh = CreateMemoryFile(name, content);
  if (dup3(fresh, fd, O_CLOEXEC) < 0) {
    const int error = errno;
    close(fresh);
    throw std::runtime_error(std::string("cannot replace the in-memory ") +
                             name + ": " + ErrnoText(error));
  }
  close(fresh);
}

std::string MemoryFilePath(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

constexpr char kIdentityName[] = "attache-xds-tls-identity";
constexpr char kClientCaName[] = "attache-xds-tls-client-ca";

void WarnIfExpired(const XdsTlsConfig& config, const TlsMaterial& material) {
  if (material.not_after.time_since_epoch().count() != 0 &&
      material.not_after < std::chrono::system_clock::now()) {
    spdlog::warn(
        "xDS TLS: the certificate in {} expired at {}; clients will refuse it",
        config.cert.string(), FormatUtc(material.not_after));
  }
}

}  // namespace

TlsCredentials::TlsCredentials(XdsTlsConfig config)
    : config_(std::move(config)) {
  current_ = ReadTlsFiles(config_);
  const TlsMaterial material = CheckTlsFiles(config_, current_);
  current_since_ = std::chrono::system_clock::now();
  current_not_after_ = material.not_after;
  identity_fd_ = CreateMemoryFile(kIdentityName, material.identity_pem);
  if (!config_.client_ca.empty()) {
    client_ca_fd_ = CreateMemoryFile(kClientCaName, material.client_ca_pem);
  }
  // One file is both the key and the certificate chain: gRPC reads the
  // private key and the chain from it (OpenSSL skips the other blocks).
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          MemoryFilePath(identity_fd_), MemoryFilePath(identity_fd_),
          client_ca_fd_ >= 0 ? MemoryFilePath(client_ca_fd_) : "",
          kProviderRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (client_ca_fd_ >= 0) {
    options.watch_root_certs();
    options.set_cert_request_type(
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    if (!config_.client_names.empty()) {
      options.set_certificate_verifier(
          grpc::experimental::ExternalCertificateVerifier::Create<
              ClientNameVerifier>(config_.client_names, refused_clients_));
    }
  } else {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  credentials_ = grpc::experimental::TlsServerCredentials(options);
  if (!credentials_) {
    throw std::runtime_error("gRPC refused the TLS options for xds.tls");
  }
  WarnIfExpired(config_, material);
}

TlsCredentials::~TlsCredentials() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (watcher_.joinable()) {
    watcher_.join();
  }
}

std::string TlsCredentials::Describe() const {
  std::string text =
      client_ca_fd_ >= 0
          ? "mutual TLS: clients must present a certificate signed by a CA "
            "in " +
                config_.client_ca.string() + "; "
          : "TLS, clients are not asked for a certificate; ";
  return text + "certificate " + config_.cert.string() + ", key " +
         config_.key.string() + ", read again every " +
         FormatDuration(config_.refresh);
}

void TlsCredentials::StartWatching() {
  watcher_ = std::thread([this] { Watch(); });
}

TlsCredentials::Status TlsCredentials::status() const {
  std::lock_guard lock(reload_mu_);
  return {.not_after = current_not_after_,
          .refused = refused_,
          .refused_clients = refused_clients_->load()};
}

bool TlsCredentials::Reload() {
  return TryReload(true) == ReloadResult::kPublished;
}

void TlsCredentials::Watch() {
  const auto reload = [this](bool report) {
    try {
      return TryReload(report);
    } catch (const std::exception& error) {  // no memory, no memfd
      spdlog::error("xDS TLS: {}", error.what());
      return ReloadResult::kProblem;
    }
  };
  std::unique_lock lock(mu_);
  const auto stopping = [this] { return stopping_; };
  while (!wake_.wait_for(lock, config_.refresh, stopping)) {
    lock.unlock();
    const ReloadResult result = reload(false);
    lock.lock();
    if (result != ReloadResult::kProblem ||
        wake_.wait_for(lock, kRecheckDelay, stopping)) {
      continue;
    }
    lock.unlock();
    reload(true);
    lock.lock();
  }
}

TlsCredentials::ReloadResult TlsCredentials::TryReload(bool report) {
  std::lock_guard lock(reload_mu_);
  TlsFiles files;
  TlsMaterial material;
  try {
    files = ReadTlsFiles(config_);
    if (files == current_) {
      if (!reported_problem_.empty()) {
        spdlog::info(
            "xDS TLS: the files hold the certificate being served again");
        reported_problem_.clear();
      }
      return ReloadResult::kUnchanged;
    }
    material = CheckTlsFiles(config_, files);
  } catch (const TlsFileError& error) {
    const std::string problem =
        "xds.tls." + error.key() + ": " + std::string(error.what());
    if (report && problem != reported_problem_) {
      spdlog::warn(
          "xDS TLS: {}; new connections still get the certificate loaded at "
          "{}",
          problem, FormatUtc(current_since_));
      reported_problem_ = problem;
      ++refused_;
    }
    return ReloadResult::kProblem;
  }
  Publish(files, material);
  return ReloadResult::kPublished;
}

void TlsCredentials::Publish(const TlsFiles& files,
                             const TlsMaterial& material) {
  const bool identity_changed =
      files.cert != current_.cert || files.key != current_.key;
  const bool client_ca_changed = files.client_ca != current_.client_ca;
  if (identity_changed) {
    ReplaceMemoryFile(identity_fd_, kIdentityName, material.identity_pem);
  }
  if (client_ca_changed && client_ca_fd_ >= 0) {
    ReplaceMemoryFile(client_ca_fd_, kClientCaName, material.client_ca_pem);
  }
  current_ = files;
  current_since_ = std::chrono::system_clock::now();
  reported_problem_.clear();
  if (identity_changed) {
    current_not_after_ = material.not_after;
    spdlog::info(
        "xDS TLS: loaded the new certificate in {} (valid until {}) for new "
        "connections",
        config_.cert.string(), FormatUtc(material.not_after));
    WarnIfExpired(config_, material);
  }
  if (client_ca_changed) {
    spdlog::info("xDS TLS: loaded the new client CA in {} for new connections",
                 config_.client_ca.string());
  }
}

}  // namespace attache
