#include "config/config.h"

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

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

SourceConfig ParseSource(const YAML::Node& node, const YamlPath& where,
                         const std::filesystem::path& base) {
  ExpectMap(node, where, {"name", "type", "path"});
  SourceConfig source;
  source.name = RequiredString(node, "name", where);
  if (!IsSourceName(source.name)) {
    where.Key("name").Fail("must match [a-z0-9-]+, got \"" + source.name +
                           "\"");
  }
  source.type = RequiredString(node, "type", where);
  if (source.type != "file") {
    where.Key("type").Fail("unknown source type \"" + source.type +
                           "\" (known types: file)");
  }
  source.path = RequiredString(node, "path", where);
  if (source.path.is_relative()) {
    source.path = base / source.path;
  }
  return source;
}

}  // namespace

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
  return ParseConfig(file, ReadFileOrThrow(file));
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
  ExpectMap(doc["xds"], xds, {"listen"});
  config.xds_listen =
      ParseListen(RequiredString(doc["xds"], "listen", xds), xds.Key("listen"));

  if (const YAML::Node admin = doc["admin"]) {
    const YamlPath where = root.Key("admin");
    ExpectMap(admin, where, {"listen"});
    if (auto listen = OptionalString(admin, "listen", where)) {
      config.admin_listen = ParseListen(*listen, where.Key("listen"));
    }
  }

  using std::chrono::milliseconds;
  if (const YAML::Node catalog = doc["catalog"]) {
    const YamlPath where = root.Key("catalog");
    ExpectMap(catalog, where, {"debounce", "max_delay"});
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
    ExpectMap(defaults, where, {"connect_timeout", "lb_policy"});
    config.defaults.connect_timeout =
        OptionalDuration(defaults, "connect_timeout", where, milliseconds(1),
                         milliseconds(3'600'000))
            .value_or(config.defaults.connect_timeout);
    if (auto policy = OptionalString(defaults, "lb_policy", where)) {
      auto parsed = ParseLbPolicy(*policy);
      if (!parsed) {
        where.Key("lb_policy")
            .Fail("must be ROUND_ROBIN, LEAST_REQUEST or RING_HASH, got \"" +
                  *policy + "\"");
      }
      config.defaults.lb_policy = *parsed;
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
