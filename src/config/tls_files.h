#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include "config/config.h"

namespace attache {

// A problem with one file of xds.tls. key() is the config key that names the
// file ("cert", "key" or "client_ca"); what() is the problem, which names the
// file's path but never shows its content.
class TlsFileError : public std::runtime_error {
 public:
  TlsFileError(std::string key, const std::string& problem)
      : std::runtime_error(problem), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

// The bytes of the files of xds.tls, as read (client_ca empty when unset).
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string client_ca;

  bool operator==(const TlsFiles&) const = default;
};

// What the TLS server is given, checked and re-encoded: only PEM blocks that
// parsed, so gRPC never sees anything that was not checked.
struct TlsMaterial {
  // The certificate chain, then the private key, in one PEM text: one file
  // holds both, so that they can only ever be replaced together.
  std::string identity_pem;
  std::string client_ca_pem;  // empty: clients are not asked for certificates
  // Of the server's own (first) certificate.
  std::chrono::system_clock::time_point not_after;
};

// Reads the files of `config`; throws TlsFileError for a file that cannot be
// read.
TlsFiles ReadTlsFiles(const XdsTlsConfig& config);

// Checks what ReadTlsFiles read: the certificate file holds at least one PEM
// certificate, the key file an unencrypted PEM private key that matches the
// first certificate, the CA file at least one PEM certificate. Throws
// TlsFileError.
TlsMaterial CheckTlsFiles(const XdsTlsConfig& config, const TlsFiles& files);

}  // namespace attache
