#pragma once

#include <grpcpp/support/byte_buffer.h>

#include "xds/server/sotw_state.h"

namespace attache {

// A DiscoveryResponse as a ByteBuffer: one small slice for version, type_url,
// nonce and control_plane, then each resource's shared slice. Protobuf allows
// fields in any order, so the result decodes like a serialized message.
grpc::ByteBuffer EncodeResponse(const PendingResponse& response);

}  // namespace attache
