#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/slice.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "xds/cache/resource_type.h"

namespace attache {

// One xDS resource, serialized once. Every stream that sends it shares
// `response_field`: the bytes of a DiscoveryResponse.resources entry (field
// tag, length and the Any), so building a response copies no resource bytes.
struct Resource {
  std::string name;
  std::string version;  // hash of the serialized message, hex
  grpc::Slice response_field;
  size_t any_offset = 0;  // where the Any starts in response_field
  size_t message_size = 0;
  // RouteConfiguration, or a Listener with an inline one: the clusters its
  // routes name, sorted and unique. Found once when the resource is made, so
  // that every stream can tell what a response would point the client at
  // without parsing it again.
  std::vector<std::string> clusters;

  // The Any (type_url and serialized message), shared, for responses that
  // wrap it (delta Resource, SotW Resource with a TTL).
  grpc::Slice Any() const {
    return response_field.sub(any_offset, response_field.size());
  }
};
using ResourcePtr = std::shared_ptr<const Resource>;
using ResourceMap = std::map<std::string, ResourcePtr, std::less<>>;

// Serializes deterministically (map fields sorted) and wraps in an Any;
// notes the clusters a route configuration refers to.
ResourcePtr MakeResource(ResourceType type, const std::string& name,
                         const google::protobuf::Message& message);

// The clusters `message` routes to (route.cluster and weighted_clusters),
// sorted and unique: those of a RouteConfiguration, and of the inline route
// configurations of a Listener's HttpConnectionManagers. A Listener that uses
// RDS names none.
std::vector<std::string> ReferencedClusters(
    ResourceType type, const google::protobuf::Message& message);

// Deterministic serialization of any message.
std::string SerializeDeterministic(const google::protobuf::Message& message);

}  // namespace attache
