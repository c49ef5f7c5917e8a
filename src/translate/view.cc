#include "translate/view.h"

#include <algorithm>
#include <cctype>

namespace attache {

Flavor FlavorOf(const envoy::config::core::v3::Node& node) {
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

}  // namespace attache
