#include "xds/server/stream_types.h"

namespace attache {

std::string_view RequestKindName(RequestKind kind) {
  switch (kind) {
    case RequestKind::kInitial:
      return "initial";
    case RequestKind::kAck:
      return "ACK";
    case RequestKind::kNack:
      return "NACK";
    case RequestKind::kUpdate:
      return "update";
    case RequestKind::kStale:
      return "stale";
    case RequestKind::kIgnored:
      return "ignored";
  }
  return "?";
}

std::string_view RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kUnparsable:
      return "unparsable";
    case RejectReason::kInvalid:
      return "invalid";
    case RejectReason::kTooManyNames:
      return "too_many_names";
    case RejectReason::kNodeTooLarge:
      return "node_too_large";
    case RejectReason::kUnreadResponses:
      return "unread_responses";
  }
  return "?";
}

std::string Clipped(std::string_view text) {
  if (text.size() <= kMaxEchoedBytes) {
    return std::string(text);
  }
  // Cut before a UTF-8 continuation byte, not inside a character: a clipped
  // NACK message or node id must stay valid text for logs and JSON pages.
  size_t cut = kMaxEchoedBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) {
    --cut;
  }
  return std::string(text.substr(0, cut)) + "...(" +
         std::to_string(text.size()) + " bytes)";
}

RequestOutcome OutcomeForType(const std::string& type_url,
                              std::optional<ResourceType> only_type) {
  RequestOutcome outcome;
  if (only_type) {
    if (!type_url.empty() && type_url != TypeUrl(*only_type)) {
      outcome.error = "type_url \"" + type_url + "\" does not belong to this " +
                      std::string(ShortName(*only_type)) + " service";
      return outcome;
    }
    outcome.type = only_type;
    return outcome;
  }
  if (type_url.empty()) {
    outcome.error = "type_url is required on the aggregated (ADS) stream";
    return outcome;
  }
  // A type attache does not serve is ignored; the stream stays open.
  outcome.type = ResourceTypeFromUrl(type_url);
  return outcome;
}

uint64_t SotwEntryHash(std::string_view name, std::string_view version) {
  return ContentHash(name) * 0x9E3779B97F4A7C15ULL + ContentHash(version);
}

std::string SotwVersionInfo(ResourceType type, const ResourceMap& resources) {
  if (IsFullState(type)) {
    return OrderedVersion(
        resources, [](const ResourcePtr& resource) -> const std::string& {
          return resource->version;
        });
  }
  uint64_t sum = 0;
  for (const auto& [name, resource] : resources) {
    sum += SotwEntryHash(name, resource->version);
  }
  return HashHex(sum);
}

}  // namespace attache
