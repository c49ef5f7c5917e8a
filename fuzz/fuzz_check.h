// Shared by the fuzz harnesses: invariant checks that turn a violation into
// a finding (libFuzzer keeps the input), and checks of what parsers hand to
// the rest of attache.
#pragma once

#include <google/protobuf/any.pb.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "catalog/catalog.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "translate/translate.h"
#include "util/ip_address.h"
#include "xds/cache/snapshot.h"

// An invariant of the code under test. A violation aborts, which libFuzzer
// reports like a crash and saves the input as an artifact.
#define FUZZ_CHECK(condition)                                           \
  do {                                                                  \
    if (!(condition)) {                                                 \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, \
                   __LINE__, #condition);                               \
      std::abort();                                                     \
    }                                                                   \
  } while (false)

namespace attache::fuzz {

// What every source must hand to the catalog: endpoints that Envoy accepts.
// `unique`: no address:port twice in a service (Kubernetes objects may
// repeat one only if they break API validation, e.g. two Service ports of
// the same name, and the translation folds such repeats).
inline void CheckServiceMap(const ServiceMap& services,
                            const std::string& origin, bool unique = true) {
  for (const auto& [name, service] : services) {
    FUZZ_CHECK(!name.empty());
    std::set<std::pair<std::string, uint32_t>> seen;
    for (const Endpoint& endpoint : service->endpoints) {
      // The whole string is the address, not just what precedes a NUL.
      FUZZ_CHECK(endpoint.address.find('\0') == std::string::npos);
      FUZZ_CHECK(IsIpLiteral(endpoint.address));
      FUZZ_CHECK(endpoint.port >= 1 && endpoint.port <= 65535);
      FUZZ_CHECK(endpoint.weight >= 1);
      FUZZ_CHECK(endpoint.origin == origin);
      FUZZ_CHECK(seen.emplace(endpoint.address, endpoint.port).second ||
                 !unique);
    }
  }
}

// The rules Envoy applies to a ClusterLoadAssignment before accepting it.
inline void CheckLoadAssignment(const Resource& resource) {
  const grpc::Slice any_bytes = resource.Any();
  google::protobuf::Any any;
  FUZZ_CHECK(any.ParseFromArray(any_bytes.begin(),
                                static_cast<int>(any_bytes.size())));
  envoy::config::endpoint::v3::ClusterLoadAssignment assignment;
  FUZZ_CHECK(any.UnpackTo(&assignment));
  FUZZ_CHECK(assignment.cluster_name() == resource.name);
  std::set<uint32_t> priorities;
  std::map<uint32_t, uint64_t> weight_per_priority;
  for (const auto& group : assignment.endpoints()) {
    priorities.insert(group.priority());
    FUZZ_CHECK(group.load_balancing_weight().value() >= 1);
    weight_per_priority[group.priority()] +=
        group.load_balancing_weight().value();
    uint64_t endpoint_weights = 0;
    for (const auto& lb_endpoint : group.lb_endpoints()) {
      const auto& socket = lb_endpoint.endpoint().address().socket_address();
      FUZZ_CHECK(IsIpLiteral(socket.address()));
      FUZZ_CHECK(socket.port_value() >= 1 && socket.port_value() <= 65535);
      FUZZ_CHECK(lb_endpoint.load_balancing_weight().value() >= 1);
      endpoint_weights += lb_endpoint.load_balancing_weight().value();
    }
    FUZZ_CHECK(endpoint_weights <= std::numeric_limits<uint32_t>::max());
  }
  // Envoy rejects gaps ("non-consecutive priority").
  uint32_t expected = 0;
  for (uint32_t priority : priorities) {
    FUZZ_CHECK(priority == expected++);
  }
  for (const auto& [priority, sum] : weight_per_priority) {
    FUZZ_CHECK(sum <= std::numeric_limits<uint32_t>::max());
  }
}

// Translates `services` the way the server does, for both flavors, from
// nowhere and from the places of the first endpoints, and checks the result.
inline void CheckTranslates(const ServiceMap& services, uint8_t variant) {
  CatalogSnapshot catalog;
  catalog.generation = 1;
  catalog.services = services;
  TranslateOptions options;
  constexpr FailoverPolicy kPolicies[] = {FailoverPolicy::kFlat,
                                          FailoverPolicy::kZoneFailover,
                                          FailoverPolicy::kWeighted};
  options.defaults.failover = kPolicies[variant % 3];
  options.defaults.local_percent = 1 + variant % 100;
  const SnapshotSetPtr set = BuildSnapshotSet(catalog, options, nullptr);
  std::set<ClientPlace> places = {ClientPlace{}};
  for (const auto& [name, service] : services) {
    for (const Endpoint& endpoint : service->endpoints) {
      if (places.size() < 4) {
        places.insert({endpoint.locality.region, endpoint.locality.zone});
      }
    }
  }
  for (Flavor flavor : kAllFlavors) {
    for (const ClientPlace& place : places) {
      const ViewSnapshotPtr view = set->View(ViewKey{flavor, place});
      // The default template maps each service to a cluster of its name.
      FUZZ_CHECK(view->Of(ResourceType::kCluster).size() == services.size());
      FUZZ_CHECK(view->Of(ResourceType::kEndpoint).size() == services.size());
      const size_t named = flavor == Flavor::kGrpc ? services.size() : 0;
      FUZZ_CHECK(view->Of(ResourceType::kListener).size() == named);
      FUZZ_CHECK(view->Of(ResourceType::kRoute).size() == named);
      for (const auto& [name, resource] : view->Of(ResourceType::kEndpoint)) {
        CheckLoadAssignment(*resource);
      }
    }
  }
}

}  // namespace attache::fuzz
