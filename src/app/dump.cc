#include "app/dump.h"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include "util/content_hash.h"
#include "xds/cache/snapshot.h"

namespace attache {
namespace {

nlohmann::json ToJson(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &text, options);
  return nlohmann::json::parse(text);
}

template <typename Message>
nlohmann::json ResourcesJson(const std::vector<Message>& messages,
                             const ResourceMap& resources) {
  ContentHasher version;
  for (const auto& [name, resource] : resources) {
    version.Add(name);
    version.Add(resource->version);
  }
  nlohmann::json list = nlohmann::json::array();
  for (const Message& message : messages) {
    nlohmann::json entry = ToJson(message);
    entry["@type"] = "type.googleapis.com/" + message.GetTypeName();
    list.push_back(std::move(entry));
  }
  return {{"version_info", HashHex(version.Finish())},
          {"resources", std::move(list)}};
}

YAML::Node ToYaml(const nlohmann::json& json) {
  YAML::Node node;
  switch (json.type()) {
    case nlohmann::json::value_t::object:
      node = YAML::Node(YAML::NodeType::Map);
      for (const auto& [key, value] : json.items()) {
        node[key] = ToYaml(value);
      }
      break;
    case nlohmann::json::value_t::array:
      node = YAML::Node(YAML::NodeType::Sequence);
      for (const auto& value : json) {
        node.push_back(ToYaml(value));
      }
      break;
    case nlohmann::json::value_t::string:
      node = json.get<std::string>();
      break;
    case nlohmann::json::value_t::null:
      node = YAML::Node(YAML::NodeType::Null);
      break;
    default:
      node = json.dump();  // numbers and booleans as written in JSON
      break;
  }
  return node;
}

}  // namespace

nlohmann::json DumpForNode(const CatalogSnapshot& catalog,
                           const TranslateOptions& options,
                           const envoy::config::core::v3::Node& node) {
  const Flavor flavor = FlavorOf(node);
  const TranslatedResources translated = Translate(catalog, options, flavor);
  const ViewSnapshotPtr view =
      BuildViewSnapshot(catalog.generation, translated, nullptr);
  nlohmann::json types = nlohmann::json::object();
  types[std::string(TypeUrl(ResourceType::kCluster))] =
      ResourcesJson(translated.clusters, view->Of(ResourceType::kCluster));
  types[std::string(TypeUrl(ResourceType::kEndpoint))] =
      ResourcesJson(translated.endpoints, view->Of(ResourceType::kEndpoint));
  types[std::string(TypeUrl(ResourceType::kListener))] =
      ResourcesJson(translated.listeners, view->Of(ResourceType::kListener));
  types[std::string(TypeUrl(ResourceType::kRoute))] =
      ResourcesJson(translated.routes, view->Of(ResourceType::kRoute));
  return {{"node", ToJson(node)},
          {"view", {{"flavor", FlavorName(flavor)}}},
          {"resources", std::move(types)}};
}

std::string JsonToYaml(const nlohmann::json& json) {
  YAML::Emitter out;
  out << ToYaml(json);
  return std::string(out.c_str()) + "\n";
}

}  // namespace attache
