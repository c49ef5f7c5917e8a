#include "sources/file/host_file.h"

#include <set>
#include <utility>

#include "config/service_yaml.h"
#include "config/yaml_fields.h"
#include "util/ip_address.h"

namespace attache {
namespace {

Endpoint ParseEndpoint(const YAML::Node& node, const YamlPath& where,
                       const std::string& origin) {
  ExpectMap(
      node, where,
      {"address", "port", "region", "zone", "sub_zone", "weight", "health"});
  Endpoint endpoint;
  endpoint.origin = origin;
  endpoint.address = RequiredString(node, "address", where);
  if (!IsIpLiteral(endpoint.address)) {
    where.Key("address").Fail("must be an IPv4 or IPv6 address, got \"" +
                              endpoint.address + "\"");
  }
  auto port = OptionalUint(node, "port", where, 1, 65535);
  if (!port) {
    where.Key("port").Fail("required key is missing");
  }
  endpoint.port = static_cast<uint32_t>(*port);
  endpoint.locality.region = OptionalString(node, "region", where).value_or("");
  endpoint.locality.zone = OptionalString(node, "zone", where).value_or("");
  endpoint.locality.sub_zone =
      OptionalString(node, "sub_zone", where).value_or("");
  endpoint.weight = static_cast<uint32_t>(
      OptionalUint(node, "weight", where, 1, 1'000'000).value_or(1));
  if (auto health = OptionalString(node, "health", where)) {
    auto parsed = ParseHealth(*health);
    if (!parsed) {
      where.Key("health").Fail(
          "must be healthy, draining or unhealthy, got \"" + *health + "\"");
    }
    endpoint.health = *parsed;
  }
  return endpoint;
}

Service ParseService(const YAML::Node& node, const YamlPath& where,
                     const std::string& origin) {
  Service service;
  if (node.IsNull()) {
    return service;  // a service with no endpoints yet
  }
  ExpectMap(node, where, {"endpoints"}, kServiceKeys);
  service.settings = ParseServiceSettings(node, where);
  const YAML::Node endpoints = node["endpoints"];
  if (!endpoints || endpoints.IsNull()) {
    return service;
  }
  const YamlPath list = where.Key("endpoints");
  ExpectSequence(endpoints, list);
  std::set<std::pair<std::string, uint32_t>> seen;
  for (size_t i = 0; i < endpoints.size(); ++i) {
    Endpoint endpoint = ParseEndpoint(endpoints[i], list.Index(i), origin);
    if (!seen.emplace(endpoint.address, endpoint.port).second) {
      list.Index(i).Fail("duplicate endpoint " + endpoint.address + ":" +
                         std::to_string(endpoint.port));
    }
    service.endpoints.push_back(std::move(endpoint));
  }
  return service;
}

}  // namespace

bool IsServiceName(const std::string& name) {
  if (name.empty() || name.size() > 253) {
    return false;
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

ServiceMap ParseHostFile(const std::string& file, const std::string& text,
                         const std::string& origin) {
  const YamlPath root(file);
  const YAML::Node doc = LoadYaml(file, text);
  if (!doc.IsDefined() || doc.IsNull()) {
    root.Fail("file is empty (write \"services: {}\" for no services)");
  }
  ExpectMap(doc, root, {"services"});
  const YamlPath where = root.Key("services");
  const YAML::Node services = doc["services"];
  if (!services) {
    where.Fail("required key is missing");
  }
  ServiceMap result;
  if (services.IsNull()) {
    return result;
  }
  ExpectMapAnyKeys(services, where);
  for (const auto& entry : services) {
    const auto name = entry.first.as<std::string>();
    if (!IsServiceName(name)) {
      where.Key(name).Fail("service name must match [A-Za-z0-9._-]+");
    }
    result.emplace(name, ParseService(entry.second, where.Key(name), origin));
  }
  return result;
}

}  // namespace attache
