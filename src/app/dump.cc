#include "app/dump.h"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/cache/snapshot.h"
#include "xds/server/stream_types.h"

namespace attache {
namespace {

nlohmann::json ToJson(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &text, options);
  return nlohmann::json::parse(text);
}

// Decodes the bytes clients receive, so the dump is exactly what is sent.
nlohmann::json ResourcesJson(ResourceType type, const ResourceMap& resources) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, resource] : resources) {
    envoy::service::discovery::v3::DiscoveryResponse holder;
    const grpc::Slice& field = resource->response_field;
    if (holder.ParseFromArray(field.begin(), static_cast<int>(field.size())) &&
        holder.resources_size() == 1) {
      list.push_back(ToJson(holder.resources(0)));
    }
  }
  // What a client that subscribes to everything is sent with them.
  return {{"version_info", SotwVersionInfo(type, resources)},
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

nlohmann::json DumpView(const ViewSnapshot& view) {
  nlohmann::json types = nlohmann::json::object();
  for (ResourceType type : kAllResourceTypes) {
    types[std::string(TypeUrl(type))] = ResourcesJson(type, view.Of(type));
  }
  return {{"view", ViewJson(view.key)},
          {"generation", view.generation},
          {"resources", std::move(types)}};
}

nlohmann::json DumpForNode(const SnapshotSet& snapshots,
                           const envoy::config::core::v3::Node& node) {
  nlohmann::json dump = DumpView(*snapshots.View(ViewKeyOf(node)));
  dump["node"] = ToJson(node);
  return dump;
}

std::string JsonToYaml(const nlohmann::json& json) {
  YAML::Emitter out;
  out << ToYaml(json);
  return std::string(out.c_str()) + "\n";
}

}  // namespace attache
