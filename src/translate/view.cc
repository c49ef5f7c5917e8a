#include "translate/view.h"

#include <algorithm>
#include <cctype>

namespace attache {
namespace {

std::string MetadataString(const envoy::config::core::v3::Node& node,
                           std::string_view key) {
  // Not the default instance's map, and a scan, not find(): both crash
  // protobuf 3.21's Map when built with TSan; a node has a handful of keys.
  if (!node.has_metadata()) {
    return "";
  }
  for (const auto& [name, value] : node.metadata().fields()) {
    if (name == key) {
      return value.has_string_value() ? value.string_value() : "";
    }
  }
  return "";
}

}  // namespace

Flavor FlavorOf(const envoy::config::core::v3::Node& node) {
  const std::string forced = MetadataString(node, kFlavorMetadataKey);
  if (forced == "grpc") {
    return Flavor::kGrpc;
  }
  if (forced == "envoy") {
    return Flavor::kEnvoy;
  }
  std::string agent = node.user_agent_name();
  std::transform(agent.begin(), agent.end(), agent.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (agent.find("grpc") != std::string::npos) {
    return Flavor::kGrpc;
  }
  for (const auto& feature : node.client_features()) {
    if (feature == "envoy.lb.does_not_support_overprovisioning") {
      return Flavor::kGrpc;
    }
  }
  return Flavor::kEnvoy;
}

std::string_view FlavorName(Flavor flavor) {
  return flavor == Flavor::kGrpc ? "grpc" : "envoy";
}

ViewKey ViewKeyOf(const envoy::config::core::v3::Node& node) {
  ViewKey key;
  key.flavor = FlavorOf(node);
  key.place.region = node.locality().region();
  key.place.zone = node.locality().zone();
  if (key.place.region.empty() && key.place.zone.empty()) {
    key.place.region = MetadataString(node, kRegionMetadataKey);
    key.place.zone = MetadataString(node, kZoneMetadataKey);
  }
  return key;
}

std::string ViewName(const ViewKey& key) {
  std::string name(FlavorName(key.flavor));
  if (!key.place.region.empty() || !key.place.zone.empty()) {
    name += "/" + key.place.region + "/" + key.place.zone;
  }
  return name;
}

nlohmann::json ViewJson(const ViewKey& key) {
  return {{"name", ViewName(key)},
          {"flavor", FlavorName(key.flavor)},
          {"region", key.place.region},
          {"zone", key.place.zone}};
}

}  // namespace attache
