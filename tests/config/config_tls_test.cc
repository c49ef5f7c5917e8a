// xds.tls: the keys (ParseConfig) and the files they name (LoadConfig).
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "config/config_error.h"
#include "config/tls_files.h"
#include "test_pem.h"

namespace attache {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

std::string ParseError(const std::string& tls) {
  try {
    ParseConfig("/etc/attache.yaml",
                "xds: {listen: \"127.0.0.1:1\", tls: " + tls +
                    "}\nsources: [{name: hosts, type: file, path: x}]\n");
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

XdsTlsConfig ParseTls(const std::string& tls) {
  return ParseConfig("/etc/attache/attache.yaml",
                     "xds: {listen: \"127.0.0.1:1\", tls: " + tls +
                         "}\nsources: [{name: hosts, type: file, path: x}]\n")
      .xds_tls;
}

TEST(ConfigTls, OffByDefault) {
  const Config config = ParseConfig("/etc/attache.yaml", R"(
xds: {listen: "127.0.0.1:1"}
sources: [{name: hosts, type: file, path: x}]
)");
  EXPECT_FALSE(config.xds_tls.enabled());
  EXPECT_TRUE(config.xds_tls.client_ca.empty());
}

TEST(ConfigTls, PathsAreRelativeToTheConfigFolder) {
  const XdsTlsConfig tls =
      ParseTls("{cert: tls/tls.crt, key: /abs/tls.key, client_ca: ca.crt}");
  EXPECT_TRUE(tls.enabled());
  EXPECT_EQ(tls.cert, "/etc/attache/tls/tls.crt");
  EXPECT_EQ(tls.key, "/abs/tls.key");
  EXPECT_EQ(tls.client_ca, "/etc/attache/ca.crt");
  EXPECT_EQ(tls.refresh, std::chrono::seconds(5));
}

TEST(ConfigTls, ClientCaAndRefreshAreOptional) {
  const XdsTlsConfig server_only = ParseTls("{cert: a.crt, key: a.key}");
  EXPECT_TRUE(server_only.client_ca.empty());
  EXPECT_EQ(ParseTls("{cert: a.crt, key: a.key, refresh: 1s}").refresh,
            std::chrono::seconds(1));
  EXPECT_EQ(ParseTls("{cert: a.crt, key: a.key, refresh: 1h}").refresh,
            std::chrono::hours(1));
}

TEST(ConfigTls, ClientNamesNeedAClientCaAndEndOnlyInAStar) {
  EXPECT_EQ(ParseTls("{cert: a.crt, key: a.key, client_ca: ca.crt, "
                     "client_names: [envoy.mesh, \"spiffe://mesh/ns/a/*\"]}")
                .client_names,
            (std::vector<std::string>{"envoy.mesh", "spiffe://mesh/ns/a/*"}));
  EXPECT_TRUE(ParseTls("{cert: a.crt, key: a.key}").client_names.empty());
  EXPECT_EQ(ParseError("{cert: a.crt, key: a.key, client_names: [envoy]}"),
            "/etc/attache.yaml: xds.tls.client_names: needs client_ca: names "
            "are checked on client certificates, which are only asked for "
            "with client_ca");
  EXPECT_EQ(ParseError("{cert: a.crt, key: a.key, client_ca: ca.crt, "
                       "client_names: [a, \"spiffe://*/envoy\"]}"),
            "/etc/attache.yaml: xds.tls.client_names[1]: '*' may only end a "
            "name (a prefix match), got \"spiffe://*/envoy\"");
  EXPECT_EQ(ParseError("{cert: a.crt, key: a.key, client_ca: ca.crt, "
                       "client_names: [\"\"]}"),
            "/etc/attache.yaml: xds.tls.client_names[0]: must be a non-empty "
            "string");
}

TEST(ConfigTls, KeyErrorsNameFileKeyAndProblem) {
  EXPECT_EQ(ParseError("{key: a.key}"),
            "/etc/attache.yaml: xds.tls.cert: required key is missing");
  EXPECT_EQ(ParseError("{cert: a.crt}"),
            "/etc/attache.yaml: xds.tls.key: required key is missing");
  EXPECT_EQ(ParseError("{cert: a.crt, key: \"\"}"),
            "/etc/attache.yaml: xds.tls.key: must not be empty");
  EXPECT_EQ(ParseError("{cert: a.crt, key: a.key, client_ca: \"\"}"),
            "/etc/attache.yaml: xds.tls.client_ca: must not be empty");
  EXPECT_EQ(ParseError("{cert: a.crt, key: a.key, ca: ca.crt}"),
            "/etc/attache.yaml: xds.tls.ca: unknown key (expected one of: "
            "cert, key, client_ca, client_names, refresh)");
  EXPECT_EQ(ParseError("{cert: [a.crt], key: a.key}"),
            "/etc/attache.yaml: xds.tls.cert: must be a string, got a list");
  EXPECT_EQ(ParseError("{cert: a.crt, key: a.key, refresh: 500ms}"),
            "/etc/attache.yaml: xds.tls.refresh: must be between 1s and "
            "3600s, got 500ms");
  EXPECT_EQ(ParseError("{cert: a.crt, key: a.key, refresh: often}"),
            "/etc/attache.yaml: xds.tls.refresh: must be a duration like "
            "250ms, 1s, 5m or 1h, got \"often\"");
  EXPECT_EQ(ParseError("[a.crt, a.key]"),
            "/etc/attache.yaml: xds.tls: must be a mapping, got a list");
  EXPECT_EQ(ParseError("null"),
            "/etc/attache.yaml: xds.tls: must be a mapping, got empty");
}

TEST(ConfigTls, ParseConfigReadsNoFiles) {
  // The files are checked by LoadConfig, not by ParseConfig.
  EXPECT_NO_THROW(ParseTls("{cert: /nonexistent/a.crt, key: /nonexistent/k}"));
}

// A config file and TLS files in a fresh folder per test.
class ConfigTlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = fs::temp_directory_path() /
              ("attache-config-tls-" + std::to_string(getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(folder_);
    fs::create_directories(folder_);
    ca_ = test_pem::Make("test ca");
    server_ = test_pem::Make("server", &ca_);
    Write("hosts.yaml", "services: {}\n");
    Write("tls.crt", server_.cert_pem);
    Write("tls.key", server_.key_pem);
    Write("ca.crt", ca_.cert_pem);
  }
  void TearDown() override { fs::remove_all(folder_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(folder_ / name) << text;
  }

  std::string Path(const std::string& name) const {
    return (folder_ / name).string();
  }

  // Loads a config with the given xds.tls (relative paths).
  Config Load(const std::string& tls =
                  "{cert: tls.crt, key: tls.key, "
                  "client_ca: ca.crt}") {
    Write("attache.yaml",
          "xds: {listen: \"127.0.0.1:1\", tls: " + tls +
              "}\nsources: [{name: hosts, type: file, path: hosts.yaml}]\n");
    return LoadConfig(folder_ / "attache.yaml");
  }

  std::string LoadError(const std::string& tls =
                            "{cert: tls.crt, key: "
                            "tls.key, client_ca: ca.crt}") {
    try {
      Load(tls);
    } catch (const ConfigError& error) {
      std::string message = error.what();
      // Never the content of a file, only its path.
      EXPECT_EQ(message.find("BEGIN"), std::string::npos) << message;
      EXPECT_EQ(message.find(server_.key_pem.substr(30, 20)), std::string::npos)
          << message;
      return message;
    }
    return "";
  }

  std::string Prefix() const { return Path("attache.yaml") + ": "; }

  fs::path folder_;
  test_pem::KeyAndCert ca_;
  test_pem::KeyAndCert server_;
};

TEST_F(ConfigTlsFilesTest, GoodFilesLoad) {
  const Config config = Load();
  EXPECT_EQ(config.xds_tls.cert, folder_ / "tls.crt");
  EXPECT_EQ(config.xds_tls.client_ca, folder_ / "ca.crt");
  EXPECT_NO_THROW(Load("{cert: tls.crt, key: tls.key}"));
  EXPECT_NO_THROW(
      Load("{cert: " + Path("tls.crt") + ", key: " + Path("tls.key") + "}"));
}

TEST_F(ConfigTlsFilesTest, CertificateChainAndKeyMayShareOneFile) {
  Write("both.pem", server_.cert_pem + ca_.cert_pem + server_.key_pem);
  EXPECT_NO_THROW(Load("{cert: both.pem, key: both.pem}"));
}

TEST_F(ConfigTlsFilesTest, MissingFiles) {
  EXPECT_EQ(LoadError("{cert: nope.crt, key: tls.key}"),
            Prefix() + "xds.tls.cert: cannot read " + Path("nope.crt") +
                ": No such file or directory");
  EXPECT_EQ(LoadError("{cert: tls.crt, key: nope.key}"),
            Prefix() + "xds.tls.key: cannot read " + Path("nope.key") +
                ": No such file or directory");
  EXPECT_EQ(LoadError("{cert: tls.crt, key: tls.key, client_ca: nope.crt}"),
            Prefix() + "xds.tls.client_ca: cannot read " + Path("nope.crt") +
                ": No such file or directory");
}

TEST_F(ConfigTlsFilesTest, FolderInsteadOfFile) {
  fs::create_directories(folder_ / "certs");
  EXPECT_EQ(
      LoadError("{cert: certs, key: tls.key}"),
      Prefix() + "xds.tls.cert: " + Path("certs") + " is a folder, not a file");
}

TEST_F(ConfigTlsFilesTest, UnreadableFile) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "root reads files whatever their mode";
  }
  fs::permissions(folder_ / "tls.key", fs::perms::none);
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.key: cannot read " +
                             Path("tls.key") + ": Permission denied");
}

TEST_F(ConfigTlsFilesTest, CertificateThatIsNotPem) {
  Write("tls.crt", "not a certificate\n");
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.cert: " + Path("tls.crt") +
                             " holds no PEM certificate");
  Write("tls.crt", "");
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.cert: " + Path("tls.crt") +
                             " holds no PEM certificate");
  // A key where the certificate should be.
  Write("tls.crt", server_.key_pem);
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.cert: " + Path("tls.crt") +
                             " holds no PEM certificate");
  // A good certificate, then a broken one.
  Write("tls.crt", server_.cert_pem +
                       "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n"
                       "-----END CERTIFICATE-----\n");
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.cert: " + Path("tls.crt") +
                             ": certificate 2 is not a valid PEM certificate");
}

TEST_F(ConfigTlsFilesTest, KeyThatIsNotPem) {
  Write("tls.key", "secret\n");
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.key: " + Path("tls.key") +
                             " holds no PEM private key");
  Write("tls.key", server_.cert_pem);
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.key: " + Path("tls.key") +
                             " holds no PEM private key");
}

TEST_F(ConfigTlsFilesTest, EncryptedKey) {
  BIO* in = BIO_new_mem_buf(server_.key_pem.data(),
                            static_cast<int>(server_.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO* out = BIO_new(BIO_s_mem());
  char passphrase[] = "secret";
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(out, key, EVP_aes_256_cbc(),
                                          passphrase, 6, nullptr, nullptr),
            1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(out, &data);
  Write("tls.key", std::string(data, static_cast<size_t>(size)));
  BIO_free(out);
  EVP_PKEY_free(key);
  BIO_free(in);
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.key: " + Path("tls.key") +
                             " is encrypted; attache needs the key without a "
                             "passphrase");
}

TEST_F(ConfigTlsFilesTest, KeyThatDoesNotMatchTheCertificate) {
  Write("tls.key", test_pem::Make("other", &ca_).key_pem);
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.key: " + Path("tls.key") +
                             " does not match the certificate in " +
                             Path("tls.crt"));
  // The CA's key does not match the server certificate either.
  Write("tls.key", ca_.key_pem);
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.key: " + Path("tls.key") +
                             " does not match the certificate in " +
                             Path("tls.crt"));
}

TEST_F(ConfigTlsFilesTest, ClientCaThatIsNotPem) {
  Write("ca.crt", std::string("\x30\x82\x01\x0a binary, as DER is", 20));
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.client_ca: " + Path("ca.crt") +
                             " holds no PEM certificate");
  // Cut short.
  Write("ca.crt", ca_.cert_pem.substr(0, ca_.cert_pem.size() / 2));
  EXPECT_EQ(LoadError(), Prefix() + "xds.tls.client_ca: " + Path("ca.crt") +
                             ": certificate 1 is not a valid PEM certificate");
}

TEST_F(ConfigTlsFilesTest, ExpiredCertificateStillLoads) {
  // Expiry is logged when serving, not refused: clients decide.
  const test_pem::KeyAndCert expired = test_pem::Make("old", &ca_, -1);
  Write("tls.crt", expired.cert_pem);
  Write("tls.key", expired.key_pem);
  EXPECT_NO_THROW(Load());
}

TEST_F(ConfigTlsFilesTest, MaterialIsReencodedCertificatesThenKey) {
  const XdsTlsConfig tls = Load().xds_tls;
  Write("tls.crt", "leading text\n" + server_.cert_pem + ca_.cert_pem);
  const TlsMaterial material = CheckTlsFiles(tls, ReadTlsFiles(tls));
  EXPECT_EQ(material.identity_pem.rfind(server_.cert_pem + ca_.cert_pem, 0),
            0U);
  EXPECT_NE(material.identity_pem.find("-----BEGIN PRIVATE KEY-----"),
            std::string::npos);
  EXPECT_EQ(material.identity_pem.find("leading text"), std::string::npos);
  EXPECT_EQ(material.client_ca_pem, ca_.cert_pem);
  const auto now = std::chrono::system_clock::now();
  EXPECT_GT(material.not_after, now + std::chrono::hours(23));
  EXPECT_LT(material.not_after, now + std::chrono::hours(25));
}

}  // namespace
}  // namespace attache
