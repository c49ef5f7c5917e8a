// Fuzzes the Kubernetes decoders: list answers (DecodeServiceList,
// DecodeEndpointSliceList), watch events (DecodeServiceEvent,
// DecodeEndpointSliceEvent), and BuildServiceMap plus translation over
// decoded lists. The first byte picks what the rest is fed to:
//   'S' Service list      's' Service watch event
//   'E' EndpointSlice list 'e' EndpointSlice watch event
//   'B' a Service list, a newline, an EndpointSlice list -> BuildServiceMap
// (any other byte picks one of them by its value). Malformed input must
// give nullopt and an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "sources/kubernetes/endpoints_builder.h"
#include "sources/kubernetes/kube_objects.h"

namespace attache {
namespace {

void Check(const KubeService& service) {
  FUZZ_CHECK(!service.name.empty());
  for (const KubeServicePort& port : service.ports) {
    FUZZ_CHECK(port.port <= 65535);
    FUZZ_CHECK(!port.protocol.empty());
  }
}

void Check(const KubeEndpointSlice& slice) {
  FUZZ_CHECK(!slice.name.empty());
  for (const KubeSlicePort& port : slice.ports) {
    FUZZ_CHECK(!port.port || (*port.port >= 1 && *port.port <= 65535));
  }
}

template <typename Object>
void CheckList(const std::optional<KubeList<Object>>& list,
               const std::string& error) {
  FUZZ_CHECK(list.has_value() || !error.empty());
  if (list) {
    for (const Object& item : list->items) {
      Check(item);
    }
  }
}

template <typename Object>
void CheckEvent(const std::optional<KubeWatchEvent<Object>>& event,
                const std::string& error) {
  FUZZ_CHECK(event.has_value() || !error.empty());
  if (!event) {
    return;
  }
  using Type = typename KubeWatchEvent<Object>::Type;
  const bool carries_object = event->type == Type::kAdded ||
                              event->type == Type::kModified ||
                              event->type == Type::kDeleted;
  FUZZ_CHECK(event->object.has_value() == carries_object);
  if (event->object) {
    Check(*event->object);
  }
}

void Build(std::string_view input, uint8_t variant) {
  const size_t newline = input.find('\n');
  if (newline == std::string_view::npos) {
    return;
  }
  std::string services_error;
  const auto services =
      DecodeServiceList(input.substr(0, newline), &services_error);
  CheckList(services, services_error);
  std::string slices_error;
  const auto slices =
      DecodeEndpointSliceList(input.substr(newline + 1), &slices_error);
  CheckList(slices, slices_error);
  if (!services || !slices) {
    return;
  }
  std::vector<const KubeService*> service_ptrs;
  for (const KubeService& service : services->items) {
    service_ptrs.push_back(&service);
  }
  std::vector<const KubeEndpointSlice*> slice_ptrs;
  for (const KubeEndpointSlice& slice : slices->items) {
    slice_ptrs.push_back(&slice);
  }
  KubernetesSourceConfig config;
  config.export_annotated_only = (variant & 1U) != 0;
  config.not_ready_unhealthy = (variant & 2U) != 0;
  if ((variant & 4U) != 0) {
    config.locality = {"us-east-1", "us-east-1a", ""};
  }
  const ServiceMap map =
      BuildServiceMap(service_ptrs, slice_ptrs, config, "east");
  fuzz::CheckServiceMap(map, "east", /*unique=*/false);
  fuzz::CheckTranslates(map, variant);
}

}  // namespace
}  // namespace attache

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view input(reinterpret_cast<const char*>(data + 1),
                               size - 1);
  std::string error;
  switch (data[0]) {
    case 'S':
      attache::CheckList(attache::DecodeServiceList(input, &error), error);
      return 0;
    case 'E':
      attache::CheckList(attache::DecodeEndpointSliceList(input, &error),
                         error);
      return 0;
    case 's':
      attache::CheckEvent(attache::DecodeServiceEvent(input, &error), error);
      return 0;
    case 'e':
      attache::CheckEvent(attache::DecodeEndpointSliceEvent(input, &error),
                          error);
      return 0;
    case 'B':
      attache::Build(input, static_cast<uint8_t>(size));
      return 0;
    default:
      break;
  }
  switch (data[0] % 5) {
    case 0:
      attache::CheckList(attache::DecodeServiceList(input, &error), error);
      break;
    case 1:
      attache::CheckList(attache::DecodeEndpointSliceList(input, &error),
                         error);
      break;
    case 2:
      attache::CheckEvent(attache::DecodeServiceEvent(input, &error), error);
      break;
    case 3:
      attache::CheckEvent(attache::DecodeEndpointSliceEvent(input, &error),
                          error);
      break;
    default:
      attache::Build(input, data[0]);
      break;
  }
  return 0;
}
