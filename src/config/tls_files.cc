#include "config/tls_files.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <memory>
#include <system_error>
#include <vector>

namespace attache {
namespace {

// Far larger than any certificate chain; a bigger file is not one.
constexpr off_t kMaxFileSize = 1 << 20;

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string ReadFile(const std::filesystem::path& path, const char* key) {
  const FileDescriptor file(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  const int fd = file.get();
  if (fd < 0) {
    throw TlsFileError(
        key, "cannot read " + path.string() + ": " + ErrnoText(errno));
  }
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    throw TlsFileError(
        key, "cannot read " + path.string() + ": " + ErrnoText(errno));
  }
  if (S_ISDIR(info.st_mode)) {
    throw TlsFileError(key, path.string() + " is a folder, not a file");
  }
  if (info.st_size > kMaxFileSize) {
    throw TlsFileError(key, path.string() +
                                " is larger than 1 MiB, which no PEM "
                                "certificate or key is");
  }
  std::string text;
  char buffer[16384];
  while (true) {
    const ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw TlsFileError(
          key, "cannot read " + path.string() + ": " + ErrnoText(errno));
    }
    if (got == 0) {
      break;
    }
    text.append(buffer, static_cast<size_t>(got));
    if (text.size() > static_cast<size_t>(kMaxFileSize)) {
      throw TlsFileError(key, path.string() +
                                  " is larger than 1 MiB, which no PEM "
                                  "certificate or key is");
    }
  }
  return text;
}

struct FreeBio {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct FreeX509 {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct FreeKey {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, FreeBio>;
using X509Ptr = std::unique_ptr<X509, FreeX509>;
using KeyPtr = std::unique_ptr<EVP_PKEY, FreeKey>;

// Leaves OpenSSL's per-thread error queue empty, whatever happened: gRPC
// shares it and must not find our errors there.
struct ClearOpenSslErrors {
  ClearOpenSslErrors() = default;
  ClearOpenSslErrors(const ClearOpenSslErrors&) = delete;
  ClearOpenSslErrors& operator=(const ClearOpenSslErrors&) = delete;
  ~ClearOpenSslErrors() { ERR_clear_error(); }
};

// Never asks for a passphrase (OpenSSL's default would read the terminal).
int NoPassphrase(char* /*buffer*/, int /*size*/, int /*rwflag*/,
                 void* /*user*/) {
  return 0;
}

BioPtr ReadBio(const std::string& text) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) {
    throw std::bad_alloc();
  }
  return bio;
}

// Every certificate of a PEM text, in order.
std::vector<X509Ptr> ParseCertificates(const std::string& text,
                                       const std::filesystem::path& path,
                                       const char* key) {
  const BioPtr bio = ReadBio(text);
  std::vector<X509Ptr> certs;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr));
    if (!cert) {
      const unsigned long error = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_LIB(error) == ERR_LIB_PEM &&
          ERR_GET_REASON(error) == PEM_R_NO_START_LINE) {
        break;  // no more certificates
      }
      throw TlsFileError(key, path.string() + ": certificate " +
                                  std::to_string(certs.size() + 1) +
                                  " is not a valid PEM certificate");
    }
    certs.push_back(std::move(cert));
  }
  if (certs.empty()) {
    throw TlsFileError(key, path.string() + " holds no PEM certificate");
  }
  return certs;
}

KeyPtr ParseKey(const std::string& text, const std::filesystem::path& path) {
  const BioPtr bio = ReadBio(text);
  KeyPtr key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    ERR_clear_error();
    if (text.find("ENCRYPTED") != std::string::npos) {
      throw TlsFileError("key", path.string() +
                                    " is encrypted; attache needs the key "
                                    "without a passphrase");
    }
    throw TlsFileError("key", path.string() + " holds no PEM private key");
  }
  return key;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string CertificatesPem(const std::vector<X509Ptr>& certs) {
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out) {
    throw std::bad_alloc();
  }
  for (const X509Ptr& cert : certs) {
    if (PEM_write_bio_X509(out.get(), cert.get()) != 1) {
      throw std::bad_alloc();
    }
  }
  return BioText(out.get());
}

std::chrono::system_clock::time_point NotAfter(const X509* cert) {
  std::tm when{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &when) != 1) {
    return {};
  }
  return std::chrono::system_clock::from_time_t(timegm(&when));
}

}  // namespace

TlsFiles ReadTlsFiles(const XdsTlsConfig& config) {
  TlsFiles files;
  files.cert = ReadFile(config.cert, "cert");
  files.key = ReadFile(config.key, "key");
  if (!config.client_ca.empty()) {
    files.client_ca = ReadFile(config.client_ca, "client_ca");
  }
  return files;
}

TlsMaterial CheckTlsFiles(const XdsTlsConfig& config, const TlsFiles& files) {
  const ClearOpenSslErrors clear_errors;
  const std::vector<X509Ptr> chain =
      ParseCertificates(files.cert, config.cert, "cert");
  const KeyPtr key = ParseKey(files.key, config.key);
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    throw TlsFileError("key", config.key.string() +
                                  " does not match the certificate in " +
                                  config.cert.string());
  }
  TlsMaterial material;
  material.not_after = NotAfter(chain.front().get());
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr,
                                       0, nullptr, nullptr) != 1) {
    throw std::bad_alloc();
  }
  material.identity_pem = CertificatesPem(chain) + BioText(out.get());
  if (!config.client_ca.empty()) {
    material.client_ca_pem = CertificatesPem(
        ParseCertificates(files.client_ca, config.client_ca, "client_ca"));
  }
  return material;
}

}  // namespace attache
