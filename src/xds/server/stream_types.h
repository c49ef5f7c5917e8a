#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "util/content_hash.h"
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

// Limits on what one client can make attache hold, do or log (see
// docs/reliability.md, "Hostile and faulty xDS clients"). Each is far above
// what a real client sends, so only a broken or hostile client meets one; the
// stream then ends with the status below and
// attache_xds_rejected_requests_total counts it.
//
// Largest request message gRPC accepts (larger: RESOURCE_EXHAUSTED before
// attache sees it). gRPC reads a message whole before handing it over, so
// this bounds what one stream can make attache buffer. An EDS request naming
// 100,000 clusters of 160 bytes fits.
inline constexpr int kMaxRequestBytes = 16 << 20;
// Resources one stream may subscribe to per type (RESOURCE_EXHAUSTED). Every
// name is kept for the stream's life, and a request of short names would
// otherwise turn 16 MiB into hundreds of MiB of names. An Envoy that takes
// every cluster names each one in EDS: this is twice the 100,000 names the
// conformance suite asks attache to accept (A19) and twenty times the
// largest catalog it is benchmarked with.
inline constexpr size_t kMaxSubscribedNames = 200'000;
// Streams one connection may have open at once, advertised to the client
// in HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (HTTP/2's own default is no
// limit). Envoy opens one ADS stream per connection, or one per resource
// type without ADS; a gRPC client one per xDS server.
inline constexpr int kMaxStreamsPerConnection = 100;
// Largest node (serialized, as sent) accepted on a stream's first request
// (INVALID_ARGUMENT). Envoy's node, with its list of extensions and
// Istio-style metadata, is tens of KiB. attache keeps only the node fields
// it uses (see BoundNodeOf).
inline constexpr size_t kMaxNodeBytes = 1U << 20U;
// Text from a client that attache logs or records (nonces, versions, NACK
// messages) is cut to this many bytes, so a client cannot fill the log or
// /debug/clients. attache's own nonces and versions are under 24 bytes.
inline constexpr size_t kMaxEchoedBytes = 1024;
// Responses queued on one stream that gRPC has not finished writing. At most
// one per type is in flight, so a client that reads what it ACKs has at most
// a few queued (a response and, once it ACKs, the next, per type). More means
// the client ACKs responses it has not read (it guesses nonces) while not
// reading: the stream ends (RESOURCE_EXHAUSTED) rather than queue every
// version for a reader that never comes.
inline constexpr size_t kMaxQueuedResponses = 32;

// Why a request or stream was refused, for the metric's label.
enum class RejectReason {
  kUnparsable,      // not a (Delta)DiscoveryRequest
  kInvalid,         // violates the protocol (e.g. no type_url on ADS)
  kTooManyNames,    // over kMaxSubscribedNames
  kNodeTooLarge,    // over kMaxNodeBytes
  kUnreadResponses  // over kMaxQueuedResponses
};
inline constexpr size_t kRejectReasonCount = 5;
std::string_view RejectReasonName(RejectReason reason);

// `text` cut to kMaxEchoedBytes, saying how long it was when it is cut.
std::string Clipped(std::string_view text);

struct NackRecord {
  std::string version_info;  // the last version the client accepted
  std::string nonce;
  int32_t code = 0;
  std::string message;
};

// What a request meant, for logs and tests.
enum class RequestKind { kInitial, kAck, kNack, kUpdate, kStale, kIgnored };
std::string_view RequestKindName(RequestKind kind);

// A hash of (name, version) pairs in map order: SotW LDS/CDS version_info and
// delta system_version_info. `version_of` maps an entry's value to its version.
template <typename Map, typename VersionOf>
std::string OrderedVersion(const Map& entries, VersionOf version_of) {
  ContentHasher version;
  for (const auto& [name, value] : entries) {
    version.Add(name);
    version.Add(version_of(value));
  }
  return HashHex(version.Finish());
}
inline std::string OrderedVersion(
    const std::map<std::string, std::string, std::less<>>& entries) {
  return OrderedVersion(
      entries, [](const std::string& v) -> const std::string& { return v; });
}

// One entry of a SotW EDS/RDS version_info: the version is the sum of these
// over what the client holds (order-free, so it is updated per change), in
// hex. Content-derived, so every replica names the same state alike.
uint64_t SotwEntryHash(std::string_view name, std::string_view version);
// The version_info of a SotW response that leaves the client holding exactly
// `resources`: for LDS/CDS a hash of the names and versions in order, for
// EDS/RDS the sum above.
std::string SotwVersionInfo(ResourceType type, const ResourceMap& resources);

struct RequestOutcome {
  RequestKind kind = RequestKind::kIgnored;
  std::optional<ResourceType> type;
  std::string error;  // non-empty: fail the stream with INVALID_ARGUMENT
};

// The type a request is about: on a per-type service (`only_type`) the
// service's type, on ADS the one its type_url names. No type and no error:
// a type attache does not serve (ignored). An error fails the stream.
RequestOutcome OutcomeForType(const std::string& type_url,
                              std::optional<ResourceType> only_type);

// What the client said it supports, from node.client_features.
struct ClientTtl {
  uint64_t ttl_ms = 0;            // zero: no TTLs for this client
  bool resource_in_sotw = false;  // SotW resources may be wrapped in Resource
};

}  // namespace attache
