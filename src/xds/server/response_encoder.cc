#include "xds/server/response_encoder.h"

#include <vector>

#include "xds/cache/wire.h"

namespace attache {

grpc::ByteBuffer EncodeResponse(const PendingResponse& response) {
  std::string header;
  AppendBytesField(&header, 1, response.version_info);
  AppendBytesField(&header, 4, TypeUrl(response.type));
  AppendBytesField(&header, 5, response.nonce);
  std::string control_plane;
  AppendBytesField(&control_plane, 1, "attache/" ATTACHE_VERSION);
  AppendBytesField(&header, 6, control_plane);

  std::vector<grpc::Slice> slices;
  slices.reserve(response.resources.size() + 1);
  slices.emplace_back(header);
  for (const ResourcePtr& resource : response.resources) {
    slices.push_back(resource->response_field);  // a reference, not a copy
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

}  // namespace attache
