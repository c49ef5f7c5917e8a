#include "sources/kubernetes/kubeconfig.h"

#include <gtest/gtest.h>

#include "config/config_error.h"

namespace attache {
namespace {

// "-----BEGIN CERTIFICATE-----\n" in base64, to check the decoding.
constexpr const char* kPemBase64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==";

std::string Kubeconfig(const std::string& user) {
  return std::string(R"(
apiVersion: v1
kind: Config
current-context: east
contexts:
  - name: east
    context: {cluster: east-cluster, user: east-user}
  - name: west
    context: {cluster: west-cluster, user: west-user}
clusters:
  - name: east-cluster
    cluster:
      server: https://127.0.0.1:6443/
      certificate-authority-data: )") +
         kPemBase64 + R"(
      tls-server-name: kubernetes
  - name: west-cluster
    cluster: {server: "https://10.0.0.1", insecure-skip-tls-verify: true}
users:
  - name: east-user
    user: )" +
         user + R"(
  - name: west-user
    user: {token: west-token}
)";
}

TEST(Kubeconfig, ResolvesTheCurrentContext) {
  const ClusterAccess access = ParseKubeconfig(
      "/k/config", Kubeconfig("{tokenFile: secrets/token}"), "");
  EXPECT_EQ(access.server, "https://127.0.0.1:6443");
  EXPECT_EQ(access.ca_pem, "-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(access.tls_server_name, "kubernetes");
  EXPECT_FALSE(access.insecure_skip_tls_verify);
  EXPECT_EQ(access.token_file, "/k/secrets/token");
  EXPECT_TRUE(access.token.empty());
}

TEST(Kubeconfig, ResolvesANamedContext) {
  const ClusterAccess access =
      ParseKubeconfig("/k/config", Kubeconfig("{}"), "west");
  EXPECT_EQ(access.server, "https://10.0.0.1");
  EXPECT_TRUE(access.insecure_skip_tls_verify);
  EXPECT_EQ(access.token, "west-token");
}

TEST(Kubeconfig, ReadsExecPlugins) {
  const ClusterAccess access = ParseKubeconfig(
      "/k/config",
      Kubeconfig("{exec: {apiVersion: client.authentication.k8s.io/v1, "
                 "command: ./get-token, args: [--cluster, east], env: "
                 "[{name: REGION, value: us}]}}"),
      "");
  ASSERT_TRUE(access.exec.has_value());
  EXPECT_EQ(access.exec->command, "/k/get-token");
  EXPECT_EQ(access.exec->args, (std::vector<std::string>{"--cluster", "east"}));
  EXPECT_EQ(access.exec->env.at("REGION"), "us");
}

TEST(Kubeconfig, ClientCertificateData) {
  const ClusterAccess access = ParseKubeconfig(
      "/k/config",
      Kubeconfig(std::string("{client-certificate-data: ") + kPemBase64 +
                 ", client-key-data: " + kPemBase64 + "}"),
      "");
  EXPECT_EQ(access.client_cert_pem, "-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(access.client_key_pem, access.client_cert_pem);
}

std::string ErrorOf(const std::string& text, const std::string& context) {
  try {
    ParseKubeconfig("/k/config", text, context);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(Kubeconfig, ErrorsNameTheFileAndTheKey) {
  EXPECT_EQ(ErrorOf(Kubeconfig("{}"), "south"),
            "/k/config: contexts: has no entry named \"south\"");
  EXPECT_EQ(ErrorOf("kind: Config\n", ""),
            "/k/config: current-context: is not set and no context was given");
  EXPECT_EQ(
      ErrorOf(Kubeconfig(std::string("{client-certificate-data: ") +
                         kPemBase64 + "}"),
              ""),
      "/k/config: users[east-user].user: client-certificate and client-key "
      "must be given together");
  EXPECT_EQ(ErrorOf(Kubeconfig("{client-certificate-data: '!!!', "
                               "client-key-data: '!!!'}"),
                    ""),
            "/k/config: users[east-user].user.client-certificate-data: is not "
            "valid base64");
}

}  // namespace
}  // namespace attache
