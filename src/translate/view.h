#pragma once

#include <array>
#include <compare>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "envoy/config/core/v3/base.pb.h"

namespace attache {

// The kind of client: it decides which resource types and shapes it gets.
enum class Flavor { kEnvoy = 0, kGrpc = 1 };
inline constexpr std::array<Flavor, 2> kAllFlavors = {Flavor::kEnvoy,
                                                      Flavor::kGrpc};

// Where a client is: it decides how endpoints are ranked for it.
struct ClientPlace {
  std::string region;
  std::string zone;

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads <=>
  auto operator<=>(const ClientPlace&) const = default;
};

// What a group of clients should see. Clients with equal keys share the same
// resource bytes, so translation cost grows with views, not clients.
struct ViewKey {
  Flavor flavor = Flavor::kEnvoy;
  ClientPlace place;

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads <=>
  auto operator<=>(const ViewKey&) const = default;
};

// Node metadata keys that place a client when node.locality is not set (for
// example a gRPC bootstrap written by a tool that only sets metadata).
inline constexpr std::string_view kRegionMetadataKey = "attache.io/region";
inline constexpr std::string_view kZoneMetadataKey = "attache.io/zone";
// Node metadata key that overrides the detected flavor: "envoy" or "grpc".
inline constexpr std::string_view kFlavorMetadataKey = "attache.io/flavor";

// Proxyless gRPC clients announce themselves in user_agent_name ("gRPC C-core",
// "grpc-java", ...) and by not supporting overprovisioning; everything else is
// treated as Envoy.
Flavor FlavorOf(const envoy::config::core::v3::Node& node);
std::string_view FlavorName(Flavor flavor);
ViewKey ViewKeyOf(const envoy::config::core::v3::Node& node);
// "envoy", "grpc/us-east-1/us-east-1a", ...: for logs and debug views.
std::string ViewName(const ViewKey& key);
nlohmann::json ViewJson(const ViewKey& key);

}  // namespace attache
