#pragma once

#include <grpcpp/support/byte_buffer.h>

#include "xds/server/delta_state.h"
#include "xds/server/sotw_state.h"
#include "xds/server/stream_types.h"

namespace attache {

// A DiscoveryResponse as a ByteBuffer: one small slice for version, type_url,
// nonce and control_plane, then each resource's shared slice. Protobuf allows
// fields in any order, so the result decodes like a serialized message. With
// a TTL, each resource is wrapped in a Resource that carries it.
grpc::ByteBuffer EncodeResponse(const PendingResponse& response,
                                const ClientTtl& ttl = {});

// A DeltaDiscoveryResponse: each Resource is a small slice (name, version)
// followed by the shared Any; heartbeats carry no Any.
grpc::ByteBuffer EncodeDeltaResponse(const PendingDeltaResponse& response,
                                     const ClientTtl& ttl = {});

}  // namespace attache
