#include "config/config.h"

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "config/service_yaml.h"
#include "config/tls_files.h"
#include "config/yaml_fields.h"
#include "util/ip_address.h"

namespace attache {
namespace {

ListenAddress ParseListen(const std::string& text, const YamlPath& where) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) {
    where.Fail("must be host:port, got \"" + text + "\"");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (!IsIpLiteral(host)) {
    where.Fail("host must be an IP address, got \"" + host + "\"");
  }
  const std::string port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [rest, error] = std::from_chars(
      port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || rest != port_text.data() + port_text.size() ||
      port > 65535 || port_text.empty()) {
    where.Fail("port must be 0..65535, got \"" + port_text + "\"");
  }
  return ListenAddress{host, static_cast<uint16_t>(port)};
}

bool IsSourceName(const std::string& name) {
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return !name.empty();
}

void ParseTemplate(const std::string& text, const YamlPath& where) {
  // Only {service} is known today; anything else in braces is a typo.
  for (size_t open = text.find('{'); open != std::string::npos;
       open = text.find('{', open + 1)) {
    const auto close = text.find('}', open);
    if (close == std::string::npos) {
      where.Fail("unclosed '{' in \"" + text + "\"");
    }
    const std::string name = text.substr(open + 1, close - open - 1);
    if (name != "service") {
      where.Fail("unknown placeholder {" + name +
                 "} (known placeholders: {service})");
    }
  }
  if (text.find("{service}") == std::string::npos) {
    where.Fail("must contain {service}, or every service gets the same name");
  }
}

std::vector<std::string> StringList(const YAML::Node& map, std::string_view key,
                                    const YamlPath& where) {
  std::vector<std::string> out;
  const YAML::Node list = map[std::string(key)];
  if (!list || list.IsNull()) {
    return out;
  }
  ExpectSequence(list, where.Key(key));
  for (size_t i = 0; i < list.size(); ++i) {
    if (!list[i].IsScalar() || list[i].Scalar().empty()) {
      where.Key(key).Index(i).Fail("must be a non-empty string");
    }
    ExpectUtf8(list[i].Scalar(), where.Key(key).Index(i));
    out.push_back(list[i].Scalar());
  }
  return out;
}

using std::chrono::milliseconds;

FileSourceConfig ParseFileSource(const YAML::Node& node, const YamlPath& where,
                                 const std::filesystem::path& base) {
  ExpectMap(node, where, {"name", "type", "max_staleness", "path"});
  FileSourceConfig file;
  file.path = RequiredString(node, "path", where);
  if (file.path.is_relative()) {
    file.path = base / file.path;
  }
  return file;
}

KubernetesSourceConfig ParseKubernetesSource(
    const YAML::Node& node, const YamlPath& where,
    const std::filesystem::path& base) {
  ExpectMap(node, where,
            {"name", "type", "max_staleness", "kubeconfig", "context",
             "namespaces", "label_selector", "export", "locality", "not_ready",
             "request_timeout", "watch_timeout"});
  KubernetesSourceConfig kube;
  if (auto path = OptionalString(node, "kubeconfig", where)) {
    kube.kubeconfig = *path;
    if (kube.kubeconfig.is_relative()) {
      kube.kubeconfig = base / kube.kubeconfig;
    }
  }
  kube.context = OptionalString(node, "context", where).value_or("");
  kube.namespaces = StringList(node, "namespaces", where);
  kube.label_selector =
      OptionalString(node, "label_selector", where).value_or("");
  if (auto mode = OptionalString(node, "export", where)) {
    if (*mode != "all" && *mode != "annotated") {
      where.Key("export").Fail("must be all or annotated, got \"" + *mode +
                               "\"");
    }
    kube.export_annotated_only = *mode == "annotated";
  }
  if (const YAML::Node locality = node["locality"]) {
    const YamlPath at = where.Key("locality");
    ExpectMap(locality, at, {"region", "zone", "sub_zone"});
    kube.locality.region = OptionalString(locality, "region", at).value_or("");
    kube.locality.zone = OptionalString(locality, "zone", at).value_or("");
    kube.locality.sub_zone =
        OptionalString(locality, "sub_zone", at).value_or("");
  }
  if (auto not_ready = OptionalString(node, "not_ready", where)) {
    if (*not_ready != "skip" && *not_ready != "unhealthy") {
      where.Key("not_ready")
          .Fail("must be skip or unhealthy, got \"" + *not_ready + "\"");
    }
    kube.not_ready_unhealthy = *not_ready == "unhealthy";
  }
  kube.request_timeout =
      OptionalDuration(node, "request_timeout", where, milliseconds(100),
                       milliseconds(600'000))
          .value_or(kube.request_timeout);
  kube.watch_timeout =
      OptionalDuration(node, "watch_timeout", where, milliseconds(1'000),
                       milliseconds(3'600'000))
          .value_or(kube.watch_timeout);
  return kube;
}

RegistrySourceConfig ParseRegistrySource(const YAML::Node& node,
                                         const YamlPath& where) {
  ExpectMap(node, where,
            {"name", "type", "max_staleness", "url", "services", "interval",
             "timeout", "confirm_empty", "removal_guard", "defaults"});
  RegistrySourceConfig registry;
  if (const YAML::Node defaults = node["defaults"]) {
    const YamlPath at = where.Key("defaults");
    ExpectMap(defaults, at, kServiceKeys);
    registry.service_settings = ParseServiceSettings(defaults, at);
  }
  registry.url = RequiredString(node, "url", where);
  if (registry.url.rfind("http://", 0) != 0 &&
      registry.url.rfind("https://", 0) != 0) {
    where.Key("url").Fail("must start with http:// or https://, got \"" +
                          registry.url + "\"");
  }
  while (!registry.url.empty() && registry.url.back() == '/') {
    registry.url.pop_back();
  }
  registry.services = StringList(node, "services", where);
  if (registry.services.empty()) {
    where.Key("services").Fail("must list at least one service");
  }
  registry.interval =
      OptionalDuration(node, "interval", where, milliseconds(100),
                       milliseconds(3'600'000))
          .value_or(registry.interval);
  registry.timeout = OptionalDuration(node, "timeout", where, milliseconds(10),
                                      milliseconds(600'000))
                         .value_or(registry.timeout);
  registry.confirm_empty =
      static_cast<uint32_t>(OptionalUint(node, "confirm_empty", where, 1, 1000)
                                .value_or(registry.confirm_empty));
  if (const YAML::Node guard = node["removal_guard"]) {
    const YamlPath at = where.Key("removal_guard");
    ExpectMap(guard, at, {"max_percent", "window"});
    registry.max_removal_percent =
        static_cast<uint32_t>(OptionalUint(guard, "max_percent", at, 0, 99)
                                  .value_or(registry.max_removal_percent));
    registry.removal_window =
        OptionalDuration(guard, "window", at, milliseconds(0),
                         milliseconds(3'600'000))
            .value_or(registry.removal_window);
  }
  return registry;
}

XdsTlsConfig ParseXdsTls(const YAML::Node& node, const YamlPath& where,
                         const std::filesystem::path& base) {
  ExpectMap(node, where,
            {"cert", "key", "client_ca", "client_names", "refresh"});
  const auto path = [&](std::string_view key,
                        bool required) -> std::filesystem::path {
    auto text = required ? std::optional(RequiredString(node, key, where))
                         : OptionalString(node, key, where);
    if (!text) {
      return {};
    }
    if (text->empty()) {
      where.Key(key).Fail("must not be empty");
    }
    std::filesystem::path file = *text;
    return file.is_relative() ? base / file : file;
  };
  XdsTlsConfig tls;
  tls.cert = path("cert", true);
  tls.key = path("key", true);
  tls.client_ca = path("client_ca", false);
  tls.client_names = StringList(node, "client_names", where);
  for (size_t i = 0; i < tls.client_names.size(); ++i) {
    const std::string& name = tls.client_names[i];
    if (name.find('*') < name.size() - 1) {
      where.Key("client_names")
          .Index(i)
          .Fail("'*' may only end a name (a prefix match), got \"" + name +
                "\"");
    }
  }
  if (!tls.client_names.empty() && tls.client_ca.empty()) {
    where.Key("client_names")
        .Fail(
            "needs client_ca: names are checked on client certificates, "
            "which are only asked for with client_ca");
  }
  tls.refresh = OptionalDuration(node, "refresh", where, milliseconds(1'000),
                                 milliseconds(3'600'000))
                    .value_or(tls.refresh);
  return tls;
}

SourceConfig ParseSource(const YAML::Node& node, const YamlPath& where,
                         const std::filesystem::path& base) {
  ExpectMapAnyKeys(node, where);
  SourceConfig source;
  source.name = RequiredString(node, "name", where);
  if (!IsSourceName(source.name)) {
    where.Key("name").Fail("must match [a-z0-9-]+, got \"" + source.name +
                           "\"");
  }
  source.type = RequiredString(node, "type", where);
  source.max_staleness =
      OptionalDuration(node, "max_staleness", where, milliseconds(0),
                       milliseconds(int64_t{30} * 24 * 3'600'000))
          .value_or(source.max_staleness);
  if (source.type == "file") {
    source.spec = ParseFileSource(node, where, base);
  } else if (source.type == "kubernetes") {
    source.spec = ParseKubernetesSource(node, where, base);
  } else if (source.type == "registry") {
    source.spec = ParseRegistrySource(node, where);
  } else {
    where.Key("type").Fail("unknown source type \"" + source.type +
                           "\" (known types: file, kubernetes, registry)");
  }
  return source;
}

}  // namespace

ListenAddress AdminConfig::HealthListen() const {
  if (health_listen) {
    return *health_listen;
  }
  const uint16_t port = listen.port == 0 || listen.port == 65535
                            ? uint16_t{0}
                            : static_cast<uint16_t>(listen.port + 1);
  return ListenAddress{listen.host, port};
}

std::string ListenAddress::ToString() const {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

std::string ReadFileOrThrow(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw ConfigError(file.string() + ": cannot read file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

Config LoadConfig(const std::filesystem::path& file) {
  Config config = ParseConfig(file, ReadFileOrThrow(file));
  if (config.xds_tls.enabled()) {
    try {
      CheckTlsFiles(config.xds_tls, ReadTlsFiles(config.xds_tls));
    } catch (const TlsFileError& error) {
      YamlPath(file.string())
          .Key("xds")
          .Key("tls")
          .Key(error.key())
          .Fail(error.what());
    }
  }
  return config;
}

Config ParseConfig(const std::filesystem::path& file, const std::string& text) {
  const YamlPath root(file.string());
  const YAML::Node doc = LoadYaml(file.string(), text);
  if (!doc.IsDefined() || doc.IsNull()) {
    root.Fail("file is empty");
  }
  ExpectMap(doc, root,
            {"xds", "admin", "catalog", "defaults", "naming", "sources"});
  Config config;
  config.file = file;

  const YamlPath xds = root.Key("xds");
  if (!doc["xds"]) {
    xds.Fail("required key is missing");
  }
  ExpectMap(doc["xds"], xds, {"listen", "resource_ttl", "heartbeat", "tls"});
  config.xds_listen =
      ParseListen(RequiredString(doc["xds"], "listen", xds), xds.Key("listen"));
  config.xds_ttl.ttl =
      OptionalDuration(doc["xds"], "resource_ttl", xds,
                       std::chrono::milliseconds(1'000),
                       std::chrono::milliseconds(int64_t{24} * 3'600'000))
          .value_or(config.xds_ttl.ttl);
  config.xds_ttl.heartbeat =
      OptionalDuration(doc["xds"], "heartbeat", xds,
                       std::chrono::milliseconds(100),
                       std::chrono::milliseconds(int64_t{24} * 3'600'000))
          .value_or(config.xds_ttl.ttl / 3);
  if (config.xds_ttl.ttl.count() == 0 && doc["xds"]["heartbeat"]) {
    xds.Key("heartbeat").Fail("needs xds.resource_ttl");
  }
  if (config.xds_ttl.ttl.count() > 0 &&
      config.xds_ttl.heartbeat >= config.xds_ttl.ttl) {
    xds.Key("heartbeat").Fail("must be shorter than xds.resource_ttl");
  }
  if (const YAML::Node tls = doc["xds"]["tls"]) {
    config.xds_tls = ParseXdsTls(tls, xds.Key("tls"), file.parent_path());
  }

  if (const YAML::Node admin = doc["admin"]) {
    const YamlPath where = root.Key("admin");
    ExpectMap(admin, where,
              {"listen", "health_listen", "max_connections",
               "max_connections_per_peer", "idle_timeout",
               "max_request_header_bytes"});
    AdminConfig& out = config.admin;
    if (auto listen = OptionalString(admin, "listen", where)) {
      out.listen = ParseListen(*listen, where.Key("listen"));
    }
    if (auto listen = OptionalString(admin, "health_listen", where)) {
      out.health_listen = ParseListen(*listen, where.Key("health_listen"));
    }
    out.max_connections = static_cast<uint32_t>(
        OptionalUint(admin, "max_connections", where, 4, 100'000)
            .value_or(out.max_connections));
    out.max_connections_per_peer = static_cast<uint32_t>(
        OptionalUint(admin, "max_connections_per_peer", where, 1, 100'000)
            .value_or(out.max_connections_per_peer));
    if (out.max_connections_per_peer > out.max_connections) {
      where.Key("max_connections_per_peer")
          .Fail("must not be more than max_connections");
    }
    out.idle_timeout = OptionalDuration(admin, "idle_timeout", where,
                                        std::chrono::milliseconds(1'000),
                                        std::chrono::milliseconds(3'600'000))
                           .value_or(out.idle_timeout);
    out.max_request_header_bytes =
        static_cast<uint32_t>(OptionalUint(admin, "max_request_header_bytes",
                                           where, 4096, uint64_t{1024} * 1024)
                                  .value_or(out.max_request_header_bytes));
    if (out.health_listen && out.listen.port != 0 &&
        out.health_listen->port == out.listen.port &&
        out.health_listen->host == out.listen.host) {
      where.Key("health_listen").Fail("must differ from admin.listen");
    }
  }

  using std::chrono::milliseconds;
  if (const YAML::Node catalog = doc["catalog"]) {
    const YamlPath where = root.Key("catalog");
    ExpectMap(catalog, where, {"debounce", "max_delay", "ready_when"});
    if (auto ready = OptionalString(catalog, "ready_when", where)) {
      if (*ready != "attempted" && *ready != "synced") {
        where.Key("ready_when")
            .Fail("must be attempted or synced, got \"" + *ready + "\"");
      }
      config.ready_requires_all_synced = *ready == "synced";
    }
    config.debounce = OptionalDuration(catalog, "debounce", where,
                                       milliseconds(0), milliseconds(60'000))
                          .value_or(config.debounce);
    config.max_delay = OptionalDuration(catalog, "max_delay", where,
                                        milliseconds(0), milliseconds(600'000))
                           .value_or(config.max_delay);
    if (config.max_delay < config.debounce) {
      where.Key("max_delay").Fail("must not be shorter than catalog.debounce");
    }
  }

  if (const YAML::Node defaults = doc["defaults"]) {
    const YamlPath where = root.Key("defaults");
    ExpectMap(defaults, where, {"local_percent"}, kServiceKeys);
    const ServiceSettings given = ParseServiceSettings(defaults, where);
    ServiceDefaults& out = config.defaults;
    out.connect_timeout = given.connect_timeout.value_or(out.connect_timeout);
    out.lb_policy = given.lb_policy.value_or(out.lb_policy);
    out.failover = given.failover.value_or(out.failover);
    out.resilience = Overlay(given.resilience, BuiltInResilience());
    if (auto percent = OptionalUint(defaults, "local_percent", where, 1, 100)) {
      out.local_percent = static_cast<uint32_t>(*percent);
    }
  }

  if (const YAML::Node naming = doc["naming"]) {
    const YamlPath where = root.Key("naming");
    ExpectMap(naming, where, {"cluster"});
    if (auto cluster = OptionalString(naming, "cluster", where)) {
      ParseTemplate(*cluster, where.Key("cluster"));
      config.cluster_name_template = *cluster;
    }
  }

  const YamlPath sources = root.Key("sources");
  if (!doc["sources"]) {
    sources.Fail("required key is missing");
  }
  ExpectSequence(doc["sources"], sources);
  if (doc["sources"].size() == 0) {
    sources.Fail("must list at least one source");
  }
  std::set<std::string> names;
  const auto base = file.parent_path();
  for (size_t i = 0; i < doc["sources"].size(); ++i) {
    SourceConfig source =
        ParseSource(doc["sources"][i], sources.Index(i), base);
    if (!names.insert(source.name).second) {
      sources.Index(i).Key("name").Fail("duplicate source name \"" +
                                        source.name + "\"");
    }
    config.sources.push_back(std::move(source));
  }
  return config;
}

}  // namespace attache
