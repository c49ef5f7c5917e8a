#pragma once

#include <array>
#include <string_view>

#include "envoy/config/core/v3/base.pb.h"

namespace attache {

// What a group of clients should see. Today views differ only by the kind of
// client; locality-aware views come later.
enum class Flavor { kEnvoy = 0, kGrpc = 1 };
inline constexpr std::array<Flavor, 2> kAllFlavors = {Flavor::kEnvoy,
                                                      Flavor::kGrpc};

// Proxyless gRPC clients announce themselves in user_agent_name ("gRPC C-core",
// "grpc-java", ...) and by not supporting overprovisioning; everything else is
// treated as Envoy.
Flavor FlavorOf(const envoy::config::core::v3::Node& node);
std::string_view FlavorName(Flavor flavor);

}  // namespace attache
