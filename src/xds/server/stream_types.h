#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "xds/cache/resource.h"
#include "xds/cache/resource_type.h"

namespace attache {

// Responses that may be split are kept under gRPC's default 4 MiB limit,
// with room for the envelope.
inline constexpr size_t kMaxResponseBytes = (4U << 20U) - (64U << 10U);

// What one resource may add to a response at most: its shared bytes plus,
// when wrapped in a Resource (delta, or state of the world with TTLs), the
// name, version, TTL and wrapper tags.
inline size_t EncodedSizeBound(const Resource& resource) {
  return resource.response_field.size() + resource.name.size() + 128;
}

struct NackRecord {
  std::string version_info;  // the last version the client accepted
  std::string nonce;
  int32_t code = 0;
  std::string message;
};

// What a request meant, for logs and tests.
enum class RequestKind { kInitial, kAck, kNack, kUpdate, kStale, kIgnored };
std::string_view RequestKindName(RequestKind kind);

struct RequestOutcome {
  RequestKind kind = RequestKind::kIgnored;
  std::optional<ResourceType> type;
  std::string error;  // non-empty: fail the stream with INVALID_ARGUMENT
};

// Delivery counters and the last rejection of one type on one stream.
struct DeliveryStats {
  std::string last_nonce;
  std::string last_version_info;
  std::string acked_version;
  uint64_t responses = 0;
  uint64_t acks = 0;
  uint64_t nacks = 0;
  std::optional<NackRecord> last_nack;
};

// What the client said it supports, from node.client_features.
struct ClientTtl {
  uint64_t ttl_ms = 0;            // zero: no TTLs for this client
  bool resource_in_sotw = false;  // SotW resources may be wrapped in Resource
};

}  // namespace attache
