#pragma once

// Throwaway keys and certificates for tests, made in memory with OpenSSL.

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace attache::test_pem {

struct KeyAndCert {
  std::string key_pem;   // PKCS#8
  std::string cert_pem;  // one certificate
};

namespace internal {

struct FreeBio {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct FreeX509 {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct FreeKey {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

inline std::string Text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

inline void Check(bool ok, const char* what) {
  if (!ok) {
    throw std::runtime_error(std::string("test_pem: ") + what);
  }
}

}  // namespace internal

// A fresh EC P-256 key and a certificate for it with common name `name`:
// self-signed, or signed by `issuer`. `valid_days` below zero: expired.
inline KeyAndCert Make(const std::string& name,
                       const KeyAndCert* issuer = nullptr,
                       long valid_days = 1) {
  using internal::Check;
  std::unique_ptr<EVP_PKEY, internal::FreeKey> key(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  Check(key != nullptr, "keygen");
  std::unique_ptr<X509, internal::FreeX509> cert(X509_new());
  Check(X509_set_version(cert.get(), 2) == 1, "version");
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  const long day = 24 * 3600;
  if (valid_days >= 0) {
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -day);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_days * day);
  } else {
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), (valid_days - 1) * day);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), valid_days * day);
  }
  Check(X509_set_pubkey(cert.get(), key.get()) == 1, "pubkey");
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(
      subject, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);

  EVP_PKEY* signing_key = key.get();
  std::unique_ptr<EVP_PKEY, internal::FreeKey> issuer_key;
  std::unique_ptr<X509, internal::FreeX509> issuer_cert;
  if (issuer != nullptr) {
    std::unique_ptr<BIO, internal::FreeBio> key_in(BIO_new_mem_buf(
        issuer->key_pem.data(), static_cast<int>(issuer->key_pem.size())));
    issuer_key.reset(
        PEM_read_bio_PrivateKey(key_in.get(), nullptr, nullptr, nullptr));
    std::unique_ptr<BIO, internal::FreeBio> cert_in(BIO_new_mem_buf(
        issuer->cert_pem.data(), static_cast<int>(issuer->cert_pem.size())));
    issuer_cert.reset(
        PEM_read_bio_X509(cert_in.get(), nullptr, nullptr, nullptr));
    Check(issuer_key && issuer_cert, "issuer");
    signing_key = issuer_key.get();
    Check(X509_set_issuer_name(cert.get(),
                               X509_get_subject_name(issuer_cert.get())) == 1,
          "issuer name");
  } else {
    Check(X509_set_issuer_name(cert.get(), subject) == 1, "issuer name");
  }
  Check(X509_sign(cert.get(), signing_key, EVP_sha256()) > 0, "sign");

  std::unique_ptr<BIO, internal::FreeBio> key_out(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0,
                                 nullptr, nullptr) == 1,
        "write key");
  std::unique_ptr<BIO, internal::FreeBio> cert_out(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_X509(cert_out.get(), cert.get()) == 1, "write cert");
  return KeyAndCert{internal::Text(key_out.get()),
                    internal::Text(cert_out.get())};
}

}  // namespace attache::test_pem
