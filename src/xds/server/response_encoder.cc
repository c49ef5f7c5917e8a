#include "xds/server/response_encoder.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "xds/cache/wire.h"

namespace attache {
namespace {

constexpr std::string_view kResourceTypeUrl =
    "type.googleapis.com/envoy.service.discovery.v3.Resource";

std::string ControlPlane() {
  std::string control_plane;
  AppendBytesField(&control_plane, 1, "attache/" ATTACHE_VERSION);
  return control_plane;
}

// google.protobuf.Duration of `ms`, as the bytes of a message field.
std::string TtlField(uint32_t field, uint64_t ms) {
  std::string duration;
  if (ms / 1000 != 0) {
    AppendVarint(&duration, (1U << 3U) | 0U);  // seconds, varint
    AppendVarint(&duration, ms / 1000);
  }
  if (ms % 1000 != 0) {
    AppendVarint(&duration, (2U << 3U) | 0U);  // nanos, varint
    AppendVarint(&duration, (ms % 1000) * 1'000'000);
  }
  std::string out;
  AppendBytesField(&out, field, duration);
  return out;
}

// Appends a discovery Resource (version 1, resource 2, name 3, ttl 6) as
// field `field` of the enclosing message: a small slice with everything but
// the Any, the shared Any itself, then the TTL.
void AppendWrapped(uint32_t field, const Resource& resource, bool with_body,
                   const std::string& ttl, std::vector<grpc::Slice>* slices,
                   std::string_view outer_any_type = {}) {
  std::string head;
  AppendBytesField(&head, 3, resource.name);
  AppendBytesField(&head, 1, resource.version);
  const size_t any_size = resource.response_field.size() - resource.any_offset;
  std::string body_tag;
  if (with_body) {
    AppendVarint(&body_tag, (2U << 3U) | 2U);
    AppendVarint(&body_tag, any_size);
  }
  const size_t message_size =
      head.size() + body_tag.size() + (with_body ? any_size : 0) + ttl.size();
  std::string prefix;
  if (outer_any_type.empty()) {
    AppendVarint(&prefix, (uint64_t{field} << 3U) | 2U);
    AppendVarint(&prefix, message_size);
  } else {
    // SotW: the Resource travels inside an Any of its own.
    std::string type_field;
    AppendBytesField(&type_field, 1, outer_any_type);
    std::string value_tag;
    AppendVarint(&value_tag, (2U << 3U) | 2U);
    AppendVarint(&value_tag, message_size);
    AppendVarint(&prefix, (uint64_t{field} << 3U) | 2U);
    AppendVarint(&prefix, type_field.size() + value_tag.size() + message_size);
    prefix += type_field;
    prefix += value_tag;
  }
  prefix += head;
  prefix += body_tag;
  slices->emplace_back(prefix);
  if (with_body) {
    slices->push_back(resource.Any());  // a reference, not a copy
  }
  if (!ttl.empty()) {
    slices->emplace_back(ttl);
  }
}

// The resource fields of a whole map one after another (for delta, each
// wrapped in its Resource without a TTL), built once per map and encoding:
// a map that many streams send whole (every wildcard client's clusters)
// travels as one shared slice instead of one per resource. gRPC keeps each
// stream's slice arrays at the largest size they ever had, so 1,000 slices
// per response would cost every stream about 64 KiB for good.
grpc::Slice WholeBody(const ResourceMapPtr& map, bool delta) {
  struct Entry {
    std::weak_ptr<const ResourceMap> map;
    bool delta;
    grpc::Slice body;
  };
  static std::mutex mu;
  static std::vector<Entry> entries;  // few: the maps in use, by type/flavor
  auto same = [&map, delta](const Entry& entry) {
    return entry.delta == delta && !entry.map.owner_before(map) &&
           !map.owner_before(entry.map);
  };
  {
    std::lock_guard lock(mu);
    if (auto it = std::find_if(entries.begin(), entries.end(), same);
        it != entries.end()) {
      return it->body;
    }
  }
  std::vector<grpc::Slice> parts;
  parts.reserve(map->size() * 2);
  for (const auto& [name, resource] : *map) {
    if (delta) {
      AppendWrapped(2, *resource, true, "", &parts);
    } else {
      parts.push_back(resource->response_field);
    }
  }
  size_t size = 0;
  for (const grpc::Slice& part : parts) {
    size += part.size();
  }
  grpc::Slice body(size);
  auto* out = const_cast<uint8_t*>(body.begin());  // fresh, not yet shared
  for (const grpc::Slice& part : parts) {
    std::memcpy(out, part.begin(), part.size());
    out += part.size();
  }
  std::lock_guard lock(mu);
  std::erase_if(entries,
                [](const Entry& entry) { return entry.map.expired(); });
  if (auto it = std::find_if(entries.begin(), entries.end(), same);
      it != entries.end()) {
    return it->body;  // another stream built it meanwhile
  }
  constexpr size_t kMaxEntries = 16;
  if (entries.size() == kMaxEntries) {
    entries.erase(entries.begin());
  }
  entries.push_back(Entry{map, delta, body});
  return body;
}

}  // namespace

grpc::ByteBuffer EncodeResponse(const PendingResponse& response,
                                const ClientTtl& ttl) {
  std::string header;
  AppendBytesField(&header, 1, response.version_info);
  AppendBytesField(&header, 4, TypeUrl(response.type));
  AppendBytesField(&header, 5, response.nonce);
  AppendBytesField(&header, 6, ControlPlane());

  std::vector<grpc::Slice> slices;
  const bool wrap = ttl.ttl_ms != 0 && ttl.resource_in_sotw;
  if (response.whole && !wrap) {
    slices.emplace_back(header);
    slices.push_back(WholeBody(response.whole, false));
    return grpc::ByteBuffer(slices.data(), slices.size());
  }
  slices.reserve(response.resources.size() + 1);
  slices.emplace_back(header);
  const std::string ttl_bytes = wrap ? TtlField(6, ttl.ttl_ms) : "";
  for (const ResourcePtr& resource : response.resources) {
    if (wrap) {
      AppendWrapped(2, *resource, true, ttl_bytes, &slices, kResourceTypeUrl);
    } else {
      slices.push_back(resource->response_field);  // a reference, not a copy
    }
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

grpc::ByteBuffer EncodeDeltaResponse(const PendingDeltaResponse& response,
                                     const ClientTtl& ttl) {
  std::string header;
  AppendBytesField(&header, 1, response.system_version_info);
  AppendBytesField(&header, 4, TypeUrl(response.type));
  AppendBytesField(&header, 5, response.nonce);
  for (const std::string& name : response.removed) {
    AppendBytesField(&header, 6, name);
  }
  AppendBytesField(&header, 7, ControlPlane());

  std::vector<grpc::Slice> slices;
  if (response.whole && ttl.ttl_ms == 0 && !response.heartbeat) {
    slices.emplace_back(header);
    slices.push_back(WholeBody(response.whole, true));
    return grpc::ByteBuffer(slices.data(), slices.size());
  }
  slices.reserve(response.resources.size() * 3 + 1);
  slices.emplace_back(header);
  const std::string ttl_bytes = ttl.ttl_ms != 0 ? TtlField(6, ttl.ttl_ms) : "";
  for (const ResourcePtr& resource : response.resources) {
    AppendWrapped(2, *resource, !response.heartbeat, ttl_bytes, &slices);
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

}  // namespace attache
