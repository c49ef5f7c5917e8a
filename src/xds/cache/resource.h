#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/slice.h>

#include <map>
#include <memory>
#include <string>

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

  // The Any (type_url and serialized message), shared, for responses that
  // wrap it (delta Resource, SotW Resource with a TTL).
  grpc::Slice Any() const {
    return response_field.sub(any_offset, response_field.size());
  }
};
using ResourcePtr = std::shared_ptr<const Resource>;
using ResourceMap = std::map<std::string, ResourcePtr, std::less<>>;

// Serializes deterministically (map fields sorted) and wraps in an Any.
ResourcePtr MakeResource(ResourceType type, const std::string& name,
                         const google::protobuf::Message& message);

// Deterministic serialization of any message.
std::string SerializeDeterministic(const google::protobuf::Message& message);

}  // namespace attache
