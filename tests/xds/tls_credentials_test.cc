#include "xds/server/tls_credentials.h"

#include <absl/synchronization/mutex.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../config/test_pem.h"

namespace attache {
namespace {

namespace fs = std::filesystem;

class TlsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As `attache serve` does: Debian's abseil records every lock order
    // gRPC's threads take, in code ThreadSanitizer cannot see into.
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    folder_ = fs::temp_directory_path() /
              ("attache-tls-credentials-" + std::to_string(getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(folder_);
    fs::create_directories(folder_);
    ca_ = test_pem::Make("test ca");
    Install(test_pem::Make("server", &ca_));
    Write("ca.crt", ca_.cert_pem);
    config_.cert = folder_ / "tls.crt";
    config_.key = folder_ / "tls.key";
  }
  void TearDown() override { fs::remove_all(folder_); }

  // Written aside and renamed in.
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(folder_ / ("." + name)) << text;
    fs::rename(folder_ / ("." + name), folder_ / name);
  }
  void Install(const test_pem::KeyAndCert& pair) {
    Write("tls.crt", pair.cert_pem);
    Write("tls.key", pair.key_pem);
  }

  fs::path folder_;
  test_pem::KeyAndCert ca_;
  XdsTlsConfig config_;
};

TEST_F(TlsCredentialsTest, DescribesTheMode) {
  const TlsCredentials server_only(config_);
  EXPECT_NE(server_only.credentials(), nullptr);
  EXPECT_EQ(server_only.Describe().rfind("TLS, clients are not asked", 0), 0U)
      << server_only.Describe();
  config_.client_ca = folder_ / "ca.crt";
  const TlsCredentials mutual(config_);
  EXPECT_EQ(mutual.Describe().rfind("mutual TLS: clients must present a "
                                    "certificate signed by a CA in " +
                                        config_.client_ca.string(),
                                    0),
            0U)
      << mutual.Describe();
}

TEST_F(TlsCredentialsTest, BadFilesAtStartThrow) {
  Write("tls.key", test_pem::Make("other", &ca_).key_pem);
  try {
    const TlsCredentials credentials(config_);
    FAIL() << "no error";
  } catch (const TlsFileError& error) {
    EXPECT_EQ(error.key(), "key");
  }
}

TEST_F(TlsCredentialsTest, PublishesOnlyGoodChanges) {
  config_.client_ca = folder_ / "ca.crt";
  TlsCredentials credentials(config_);
  EXPECT_FALSE(credentials.Reload());  // nothing changed

  const test_pem::KeyAndCert next = test_pem::Make("server 2", &ca_);
  Install(next);
  EXPECT_TRUE(credentials.Reload());
  EXPECT_FALSE(credentials.Reload());

  // Half a rotation: the new key next to the old certificate.
  const test_pem::KeyAndCert third = test_pem::Make("server 3", &ca_);
  Write("tls.key", third.key_pem);
  EXPECT_FALSE(credentials.Reload());
  Write("tls.crt", third.cert_pem);
  EXPECT_TRUE(credentials.Reload());

  EXPECT_EQ(credentials.status().refused, 1U);

  // Broken or missing files are never published.
  const auto served_until = credentials.status().not_after;
  Write("tls.crt", "garbage");
  EXPECT_FALSE(credentials.Reload());
  EXPECT_FALSE(credentials.Reload());  // the same problem counts once
  fs::remove(folder_ / "tls.crt");
  EXPECT_FALSE(credentials.Reload());
  EXPECT_EQ(credentials.status().refused, 3U);
  EXPECT_EQ(credentials.status().not_after, served_until);
  // Back to what is being served: nothing to publish.
  Write("tls.crt", third.cert_pem);
  EXPECT_FALSE(credentials.Reload());

  // The expiry reported is the served certificate's.
  const test_pem::KeyAndCert longer = test_pem::Make("server 4", &ca_, 30);
  Install(longer);
  EXPECT_TRUE(credentials.Reload());
  const auto days = std::chrono::duration_cast<std::chrono::hours>(
                        credentials.status().not_after - served_until)
                        .count() /
                    24;
  EXPECT_EQ(days, 29);

  // A new client CA alone.
  const test_pem::KeyAndCert other_ca = test_pem::Make("other ca");
  Write("ca.crt", ca_.cert_pem + other_ca.cert_pem);
  EXPECT_TRUE(credentials.Reload());
}

TEST_F(TlsCredentialsTest, WatchingStopsWithTheObject) {
  config_.refresh = std::chrono::milliseconds(1000);
  auto credentials = std::make_unique<TlsCredentials>(config_);
  credentials->StartWatching();
  credentials.reset();  // joins the watcher at once, without a refresh tick
}

}  // namespace
}  // namespace attache
