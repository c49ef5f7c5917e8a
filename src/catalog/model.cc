#include "catalog/model.h"

namespace attache {

// Default-constructed services (a map's operator[]) share one empty service.
SharedService::SharedService() {
  static const auto* const kEmpty =
      new std::shared_ptr<const Service>(std::make_shared<const Service>());
  service_ = *kEmpty;
}

std::optional<Health> ParseHealth(std::string_view text) {
  if (text == "healthy") return Health::kHealthy;
  if (text == "draining") return Health::kDraining;
  if (text == "unhealthy") return Health::kUnhealthy;
  return std::nullopt;
}

std::optional<LbPolicy> ParseLbPolicy(std::string_view text) {
  if (text == "ROUND_ROBIN") return LbPolicy::kRoundRobin;
  if (text == "LEAST_REQUEST") return LbPolicy::kLeastRequest;
  if (text == "RING_HASH") return LbPolicy::kRingHash;
  return std::nullopt;
}

std::string_view HealthName(Health health) {
  switch (health) {
    case Health::kHealthy:
      return "healthy";
    case Health::kDraining:
      return "draining";
    case Health::kUnhealthy:
      return "unhealthy";
  }
  return "unknown";
}

std::string_view LbPolicyName(LbPolicy policy) {
  switch (policy) {
    case LbPolicy::kRoundRobin:
      return "ROUND_ROBIN";
    case LbPolicy::kLeastRequest:
      return "LEAST_REQUEST";
    case LbPolicy::kRingHash:
      return "RING_HASH";
  }
  return "unknown";
}

std::optional<FailoverPolicy> ParseFailoverPolicy(std::string_view text) {
  if (text == "flat") return FailoverPolicy::kFlat;
  if (text == "zone-failover") return FailoverPolicy::kZoneFailover;
  if (text == "weighted") return FailoverPolicy::kWeighted;
  return std::nullopt;
}

std::string_view FailoverPolicyName(FailoverPolicy policy) {
  switch (policy) {
    case FailoverPolicy::kFlat:
      return "flat";
    case FailoverPolicy::kZoneFailover:
      return "zone-failover";
    case FailoverPolicy::kWeighted:
      return "weighted";
  }
  return "unknown";
}

}  // namespace attache
