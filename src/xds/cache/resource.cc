#include "xds/cache/resource.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "util/content_hash.h"
#include "xds/cache/wire.h"

namespace attache {

std::string SerializeDeterministic(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return bytes;
}

ResourcePtr MakeResource(ResourceType type, const std::string& name,
                         const google::protobuf::Message& message) {
  const std::string body = SerializeDeterministic(message);
  std::string any;
  AppendBytesField(&any, 1, TypeUrl(type));  // Any.type_url
  AppendBytesField(&any, 2, body);           // Any.value
  std::string field;
  AppendBytesField(&field, 2, any);  // DiscoveryResponse.resources
  auto resource = std::make_shared<Resource>();
  resource->name = name;
  resource->version = HashHex(ContentHash(body));
  resource->response_field = grpc::Slice(field);
  resource->any_offset = field.size() - any.size();
  resource->message_size = body.size();
  return resource;
}

}  // namespace attache
