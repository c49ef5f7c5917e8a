#include "sources/kubernetes/credentials.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

namespace attache {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("attache-credentials-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }

  std::filesystem::path dir_;
};

TEST_F(CredentialsTest, FixedToken) {
  ClusterAccess access;
  access.token = "abc";
  EXPECT_EQ(BearerTokenSource(access).Token(), "abc");
}

TEST_F(CredentialsTest, TokenFileIsReadAgainWhenItChanges) {
  Write("token", "first\n");
  ClusterAccess access;
  access.token_file = dir_ / "token";
  BearerTokenSource tokens(access);
  EXPECT_EQ(tokens.Token(), "first");
  Write("token", "second\n");
  // Rotation keeps the size but changes the time; make the change visible
  // even on file systems with coarse timestamps.
  std::filesystem::last_write_time(
      dir_ / "token", std::filesystem::last_write_time(dir_ / "token") +
                          std::chrono::seconds(5));
  EXPECT_EQ(tokens.Token(), "second");
}

TEST_F(CredentialsTest, ExecPluginTokenIsCachedUntilInvalidated) {
  // The plugin counts its runs, so the test sees when it is run again.
  Write("plugin.sh",
        "#!/bin/sh\n"
        "n=$(cat \"$COUNTER\" 2>/dev/null || echo 0); n=$((n+1)); "
        "echo $n > \"$COUNTER\"\n"
        "case \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3;; "
        "esac\n"
        "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
        "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"tok-'$n'\","
        "\"expirationTimestamp\":\"2999-01-01T00:00:00Z\"}}'\n");
  chmod((dir_ / "plugin.sh").c_str(), 0755);
  ClusterAccess access;
  access.exec = ExecCredentialPlugin{"client.authentication.k8s.io/v1",
                                     (dir_ / "plugin.sh").string(),
                                     {},
                                     {{"COUNTER", (dir_ / "count").string()}}};
  BearerTokenSource tokens(access);
  EXPECT_EQ(tokens.Token(), "tok-1");
  EXPECT_EQ(tokens.Token(), "tok-1");  // cached: not expired
  tokens.Invalidate();                 // as after a 401
  EXPECT_EQ(tokens.Token(), "tok-2");
}

TEST_F(CredentialsTest, ExpiredExecCredentialIsRefreshed) {
  Write("plugin.sh",
        "#!/bin/sh\n"
        "echo '{\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t-'$$'\","
        "\"expirationTimestamp\":\"2001-01-01T00:00:00Z\"}}'\n");
  chmod((dir_ / "plugin.sh").c_str(), 0755);
  ClusterAccess access;
  access.exec = ExecCredentialPlugin{
      "client.authentication.k8s.io/v1", (dir_ / "plugin.sh").string(), {}, {}};
  BearerTokenSource tokens(access);
  EXPECT_NE(tokens.Token(), tokens.Token());  // a new process each time
}

TEST_F(CredentialsTest, FailingPluginIsAnError) {
  Write("plugin.sh", "#!/bin/sh\nexit 1\n");
  chmod((dir_ / "plugin.sh").c_str(), 0755);
  ClusterAccess access;
  access.exec = ExecCredentialPlugin{
      "client.authentication.k8s.io/v1", (dir_ / "plugin.sh").string(), {}, {}};
  BearerTokenSource tokens(access);
  EXPECT_THROW(tokens.Token(), std::runtime_error);
}

}  // namespace
}  // namespace attache
