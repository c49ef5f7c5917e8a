#include "xds/cache/resource_type.h"

namespace attache {
namespace {

constexpr std::array<std::string_view, kResourceTypeCount> kTypeUrls = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "type.googleapis.com/envoy.config.listener.v3.Listener",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
};
constexpr std::array<std::string_view, kResourceTypeCount> kShortNames = {
    "CDS", "EDS", "LDS", "RDS"};

}  // namespace

std::string_view TypeUrl(ResourceType type) { return kTypeUrls[Index(type)]; }

std::string_view ShortName(ResourceType type) {
  return kShortNames[Index(type)];
}

std::optional<ResourceType> ResourceTypeFromUrl(std::string_view type_url) {
  for (ResourceType type : kAllResourceTypes) {
    if (TypeUrl(type) == type_url) {
      return type;
    }
  }
  return std::nullopt;
}

}  // namespace attache
