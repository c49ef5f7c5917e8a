#include "sources/kubernetes/kubeconfig.h"

#include <openssl/evp.h>

#include <cstdlib>

#include "config/config.h"
#include "config/yaml_fields.h"

namespace attache {
namespace {

std::string DecodeBase64(const std::string& text, const YamlPath& where) {
  std::string compact;
  for (char c : text) {
    if (c != '\n' && c != '\r' && c != ' ') {
      compact.push_back(c);
    }
  }
  std::string out(compact.size() / 4 * 3 + 3, '\0');
  const int written =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(compact.data()),
                      static_cast<int>(compact.size()));
  if (written < 0 || compact.size() % 4 != 0) {
    where.Fail("is not valid base64");
  }
  size_t padding = 0;
  for (size_t i = compact.size(); i > 0 && compact[i - 1] == '='; --i) {
    ++padding;
  }
  out.resize(static_cast<size_t>(written) - padding);
  return out;
}

std::filesystem::path Resolve(const std::filesystem::path& base,
                              const std::string& path) {
  std::filesystem::path resolved(path);
  return resolved.is_relative() ? base / resolved : resolved;
}

// Finds the entry named `name` in a list of {name, <kind>: {...}}.
YAML::Node Named(const YAML::Node& doc, const std::string& list,
                 const std::string& name, const YamlPath& root) {
  const YAML::Node entries = doc[list];
  if (entries && entries.IsSequence()) {
    for (size_t i = 0; i < entries.size(); ++i) {
      const YAML::Node entry = entries[i];
      if (entry.IsMap() && entry["name"] && entry["name"].IsScalar() &&
          entry["name"].Scalar() == name) {
        return entry;
      }
    }
  }
  root.Key(list).Fail("has no entry named \"" + name + "\"");
}

// Reads `<key>-data` (base64) or `<key>` (a file) into PEM text.
std::string PemFrom(const YAML::Node& map, const std::string& key,
                    const YamlPath& where, const std::filesystem::path& base) {
  if (auto data = OptionalString(map, key + "-data", where)) {
    return DecodeBase64(*data, where.Key(key + "-data"));
  }
  if (auto file = OptionalString(map, key, where)) {
    return ReadFileOrThrow(Resolve(base, *file));
  }
  return "";
}

}  // namespace

ClusterAccess ParseKubeconfig(const std::filesystem::path& file,
                              const std::string& text,
                              const std::string& context) {
  const YamlPath root(file.string());
  const YAML::Node doc = LoadYaml(file.string(), text);
  if (!doc.IsMap()) {
    root.Fail("is not a kubeconfig (expected a mapping)");
  }
  const auto base = file.parent_path();
  std::string context_name = context;
  if (context_name.empty()) {
    context_name = OptionalString(doc, "current-context", root).value_or("");
    if (context_name.empty()) {
      root.Key("current-context").Fail("is not set and no context was given");
    }
  }
  const YAML::Node context_entry = Named(doc, "contexts", context_name, root);
  const YamlPath context_path = root.Key("contexts[" + context_name + "]");
  const YAML::Node ctx = context_entry["context"];
  if (!ctx || !ctx.IsMap()) {
    context_path.Key("context").Fail("required key is missing");
  }
  const std::string cluster_name =
      RequiredString(ctx, "cluster", context_path.Key("context"));
  const std::string user_name =
      OptionalString(ctx, "user", context_path.Key("context")).value_or("");

  ClusterAccess access;
  const YamlPath cluster_path = root.Key("clusters[" + cluster_name + "]");
  const YAML::Node cluster =
      Named(doc, "clusters", cluster_name, root)["cluster"];
  if (!cluster || !cluster.IsMap()) {
    cluster_path.Key("cluster").Fail("required key is missing");
  }
  const YamlPath c = cluster_path.Key("cluster");
  access.server = RequiredString(cluster, "server", c);
  if (access.server.rfind("https://", 0) != 0 &&
      access.server.rfind("http://", 0) != 0) {
    c.Key("server").Fail("must be an http(s) URL, got \"" + access.server +
                         "\"");
  }
  while (access.server.back() == '/') {
    access.server.pop_back();
  }
  access.ca_pem = PemFrom(cluster, "certificate-authority", c, base);
  access.insecure_skip_tls_verify =
      OptionalString(cluster, "insecure-skip-tls-verify", c).value_or("") ==
      "true";
  access.tls_server_name =
      OptionalString(cluster, "tls-server-name", c).value_or("");

  if (user_name.empty()) {
    return access;
  }
  const YamlPath user_path = root.Key("users[" + user_name + "]");
  const YAML::Node user = Named(doc, "users", user_name, root)["user"];
  if (!user || user.IsNull()) {
    return access;
  }
  const YamlPath u = user_path.Key("user");
  ExpectMapAnyKeys(user, u);
  access.client_cert_pem = PemFrom(user, "client-certificate", u, base);
  access.client_key_pem = PemFrom(user, "client-key", u, base);
  if (access.client_cert_pem.empty() != access.client_key_pem.empty()) {
    u.Fail("client-certificate and client-key must be given together");
  }
  access.token = OptionalString(user, "token", u).value_or("");
  if (auto token_file = OptionalString(user, "tokenFile", u)) {
    access.token_file = Resolve(base, *token_file);
  }
  if (const YAML::Node exec = user["exec"]) {
    const YamlPath e = u.Key("exec");
    ExpectMapAnyKeys(exec, e);
    ExecCredentialPlugin plugin;
    plugin.api_version = OptionalString(exec, "apiVersion", e)
                             .value_or("client.authentication.k8s.io/v1");
    plugin.command = RequiredString(exec, "command", e);
    if (plugin.command.find('/') != std::string::npos) {
      plugin.command =
          Resolve(base, plugin.command).lexically_normal().string();
    }
    if (const YAML::Node args = exec["args"]) {
      ExpectSequence(args, e.Key("args"));
      for (const auto& arg : args) {
        plugin.args.push_back(arg.as<std::string>());
      }
    }
    if (const YAML::Node env = exec["env"]; env && !env.IsNull()) {
      ExpectSequence(env, e.Key("env"));
      for (size_t i = 0; i < env.size(); ++i) {
        plugin.env[RequiredString(env[i], "name", e.Key("env").Index(i))] =
            OptionalString(env[i], "value", e.Key("env").Index(i)).value_or("");
      }
    }
    access.exec = std::move(plugin);
  }
  return access;
}

ClusterAccess LoadKubeconfig(const std::filesystem::path& file,
                             const std::string& context) {
  return ParseKubeconfig(file, ReadFileOrThrow(file), context);
}

ClusterAccess InClusterAccess() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");  // NOLINT
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");  // NOLINT
  if (host == nullptr || port == nullptr) {
    throw ConfigError(
        "kubernetes source: no kubeconfig given and not running in a pod "
        "(KUBERNETES_SERVICE_HOST is not set)");
  }
  const std::filesystem::path account =
      "/var/run/secrets/kubernetes.io/serviceaccount";
  ClusterAccess access;
  const std::string h = host;
  access.server = "https://" +
                  (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" +
                  port;
  access.ca_pem = ReadFileOrThrow(account / "ca.crt");
  access.token_file = account / "token";  // rotated by the kubelet
  return access;
}

}  // namespace attache
