#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace attache {

// Ordered as ADS should send them: make before break.
enum class ResourceType : uint8_t {
  kCluster = 0,
  kEndpoint = 1,
  kListener = 2,
  kRoute = 3,
};
inline constexpr size_t kResourceTypeCount = 4;
inline constexpr std::array<ResourceType, kResourceTypeCount>
    kAllResourceTypes = {ResourceType::kCluster, ResourceType::kEndpoint,
                         ResourceType::kListener, ResourceType::kRoute};

std::string_view TypeUrl(ResourceType type);
std::string_view ShortName(ResourceType type);  // "CDS", "EDS", ...
std::optional<ResourceType> ResourceTypeFromUrl(std::string_view type_url);

// LDS and CDS responses carry the full state; EDS and RDS may carry a subset.
inline bool IsFullState(ResourceType type) {
  return type == ResourceType::kCluster || type == ResourceType::kListener;
}
// Only LDS and CDS know a wildcard subscription.
inline bool SupportsWildcard(ResourceType type) { return IsFullState(type); }

inline size_t Index(ResourceType type) { return static_cast<size_t>(type); }

}  // namespace attache
