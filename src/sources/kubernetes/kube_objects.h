#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attache {

// The parts of v1 Service and discovery.k8s.io/v1 EndpointSlice that attache
// uses. Everything else in the objects is ignored.
struct KubeServicePort {
  std::string name;
  uint32_t port = 0;
  std::string protocol = "TCP";
};

struct KubeService {
  std::string ns;
  std::string name;
  std::string type;  // ClusterIP, NodePort, LoadBalancer, ExternalName
  std::map<std::string, std::string> annotations;
  std::vector<KubeServicePort> ports;

  bool operator==(const KubeService&) const = default;
};

struct KubeSlicePort {
  std::string name;
  std::optional<uint32_t> port;
  std::string protocol = "TCP";

  bool operator==(const KubeSlicePort&) const = default;
};

struct KubeSliceEndpoint {
  std::vector<std::string> addresses;
  std::optional<bool> ready;
  std::optional<bool> serving;
  std::optional<bool> terminating;
  std::string zone;
  std::string node_name;

  bool operator==(const KubeSliceEndpoint&) const = default;
};

struct KubeEndpointSlice {
  std::string ns;
  std::string name;
  std::string service_name;  // label kubernetes.io/service-name
  std::string address_type;  // IPv4, IPv6, FQDN
  std::vector<KubeSlicePort> ports;
  std::vector<KubeSliceEndpoint> endpoints;

  bool operator==(const KubeEndpointSlice&) const = default;
};

template <typename Object>
struct KubeList {
  std::vector<Object> items;
  std::string resource_version;
  std::string continue_token;
};

template <typename Object>
struct KubeWatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type = Type::kError;
  std::optional<Object> object;  // ADDED, MODIFIED, DELETED
  std::string resource_version;  // of the object, or of the bookmark
  int32_t error_code = 0;        // ERROR: the Status code (410: expired)
  std::string error_message;
};

// Decoders: nullopt (with `error` set) for malformed input.
std::optional<KubeList<KubeService>> DecodeServiceList(std::string_view json,
                                                       std::string* error);
std::optional<KubeList<KubeEndpointSlice>> DecodeEndpointSliceList(
    std::string_view json, std::string* error);
std::optional<KubeWatchEvent<KubeService>> DecodeServiceEvent(
    std::string_view line, std::string* error);
std::optional<KubeWatchEvent<KubeEndpointSlice>> DecodeEndpointSliceEvent(
    std::string_view line, std::string* error);

// "ns/name", the key of an object in a store.
template <typename Object>
std::string KeyOf(const Object& object) {
  return object.ns + "/" + object.name;
}

}  // namespace attache
