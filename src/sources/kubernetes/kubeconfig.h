#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace attache {

// How to run a client.authentication.k8s.io exec credential plugin.
struct ExecCredentialPlugin {
  std::string api_version;
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
};

// Everything needed to talk to one API server, resolved from a kubeconfig
// context or from the in-cluster service account. Secrets stay in memory
// only and are never logged.
struct ClusterAccess {
  std::string server;  // https://host:port
  std::string ca_pem;  // empty: the system trust store
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string token;                 // a fixed bearer token
  std::filesystem::path token_file;  // re-read when it changes
  std::optional<ExecCredentialPlugin> exec;
};

// Resolves `context` (empty: current-context) of a kubeconfig file. Relative
// file references are relative to the kubeconfig's folder. Throws ConfigError
// naming the file, the key and the problem.
ClusterAccess LoadKubeconfig(const std::filesystem::path& file,
                             const std::string& context);
ClusterAccess ParseKubeconfig(const std::filesystem::path& file,
                              const std::string& text,
                              const std::string& context);

// The pod's service account: KUBERNETES_SERVICE_HOST/PORT and the token and
// CA under /var/run/secrets/kubernetes.io/serviceaccount. Throws ConfigError.
ClusterAccess InClusterAccess();

}  // namespace attache
