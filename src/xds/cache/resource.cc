#include "xds/cache/resource.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>

#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "util/content_hash.h"
#include "xds/cache/wire.h"

namespace attache {
namespace {

using envoy::config::route::v3::RouteConfiguration;
using envoy::extensions::filters::network::http_connection_manager::v3::
    HttpConnectionManager;

void AddRouteClusters(const RouteConfiguration& config,
                      std::vector<std::string>* out) {
  for (const auto& host : config.virtual_hosts()) {
    for (const auto& route : host.routes()) {
      if (!route.has_route()) {
        continue;
      }
      const auto& action = route.route();
      if (!action.cluster().empty()) {
        out->push_back(action.cluster());
      }
      for (const auto& weighted : action.weighted_clusters().clusters()) {
        out->push_back(weighted.name());
      }
    }
  }
}

// A filter's or api_listener's Any: an HttpConnectionManager with routes of
// its own adds their clusters; anything else routes nowhere.
void AddManagerClusters(const google::protobuf::Any& any,
                        std::vector<std::string>* out) {
  HttpConnectionManager manager;
  if (any.Is<HttpConnectionManager>() && any.UnpackTo(&manager) &&
      manager.has_route_config()) {
    AddRouteClusters(manager.route_config(), out);
  }
}

}  // namespace

std::vector<std::string> ReferencedClusters(
    ResourceType type, const google::protobuf::Message& message) {
  std::vector<std::string> out;
  if (type == ResourceType::kRoute) {
    if (const auto* config =
            google::protobuf::DynamicCastToGenerated<RouteConfiguration>(
                &message)) {
      AddRouteClusters(*config, &out);
    }
  } else if (type == ResourceType::kListener) {
    if (const auto* listener = google::protobuf::DynamicCastToGenerated<
            envoy::config::listener::v3::Listener>(&message)) {
      if (listener->has_api_listener()) {
        AddManagerClusters(listener->api_listener().api_listener(), &out);
      }
      for (const auto& chain : listener->filter_chains()) {
        for (const auto& filter : chain.filters()) {
          if (filter.has_typed_config()) {
            AddManagerClusters(filter.typed_config(), &out);
          }
        }
      }
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string SerializeDeterministic(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return bytes;
}

ResourcePtr MakeResource(ResourceType type, const std::string& name,
                         const google::protobuf::Message& message) {
  const std::string body = SerializeDeterministic(message);
  std::string any;
  AppendBytesField(&any, 1, TypeUrl(type));  // Any.type_url
  AppendBytesField(&any, 2, body);           // Any.value
  std::string field;
  AppendBytesField(&field, 2, any);  // DiscoveryResponse.resources
  auto resource = std::make_shared<Resource>();
  resource->name = name;
  resource->version = HashHex(ContentHash(body));
  resource->response_field = grpc::Slice(field);
  resource->any_offset = field.size() - any.size();
  resource->message_size = body.size();
  resource->clusters = ReferencedClusters(type, message);
  return resource;
}

}  // namespace attache
