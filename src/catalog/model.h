#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "catalog/resilience.h"

namespace attache {

enum class Health { kHealthy, kDraining, kUnhealthy };
enum class LbPolicy { kRoundRobin, kLeastRequest, kRingHash };
// How a service's endpoints are ranked for a client, by the client's place:
// flat (all equal), zone-failover (my zone, then my region, then the rest, as
// priorities) or weighted (one priority, my zone gets a configured share).
enum class FailoverPolicy { kFlat, kZoneFailover, kWeighted };

std::optional<Health> ParseHealth(std::string_view text);
std::optional<LbPolicy> ParseLbPolicy(std::string_view text);
std::string_view HealthName(Health health);
std::string_view LbPolicyName(LbPolicy policy);
std::optional<FailoverPolicy> ParseFailoverPolicy(std::string_view text);
std::string_view FailoverPolicyName(FailoverPolicy policy);

struct Locality {
  std::string region;
  std::string zone;
  std::string sub_zone;

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads <=>
  auto operator<=>(const Locality&) const = default;
};

struct Endpoint {
  std::string address;  // an IP literal
  uint32_t port = 0;
  Locality locality;
  uint32_t weight = 1;
  Health health = Health::kHealthy;
  bool canary = false;  // served as envoy.lb metadata canary: true
  // Served as filter metadata "attache" (for example the Kubernetes node).
  std::map<std::string, std::string, std::less<>> metadata;
  std::string origin;  // name of the source that reported it

  bool operator==(const Endpoint&) const = default;
};

// Per-service settings a source may set; unset ones fall back to the
// configured defaults.
struct ServiceSettings {
  std::optional<std::chrono::milliseconds> connect_timeout;
  std::optional<LbPolicy> lb_policy;
  std::optional<FailoverPolicy> failover;
  ResilienceSettings resilience;

  bool operator==(const ServiceSettings&) const = default;
};

struct Service {
  ServiceSettings settings;
  std::vector<Endpoint> endpoints;

  bool operator==(const Service&) const = default;
};

// A service once built: immutable and shared, so that a service that did not
// change is the same object in the source, in every catalog generation and
// in the snapshot's previous generation. Copying a map of them copies
// pointers, and comparing one costs a pointer compare for each service that
// did not change, not a walk over its endpoints.
class SharedService {
 public:
  SharedService();
  // NOLINTNEXTLINE(google-explicit-constructor): a Service is what it shares
  SharedService(Service service)
      : service_(std::make_shared<const Service>(std::move(service))) {}

  const Service& operator*() const { return *service_; }
  const Service* operator->() const { return service_.get(); }
  // True when both hold the very same object (then they are also equal).
  bool SameObject(const SharedService& other) const {
    return service_ == other.service_;
  }
  // Equal content; the same object needs no walk over endpoints.
  bool operator==(const SharedService& other) const {
    return SameObject(other) || *service_ == *other.service_;
  }

 private:
  std::shared_ptr<const Service> service_;
};

// Services by name, ordered so that everything derived from it is
// deterministic.
using ServiceMap = std::map<std::string, SharedService, std::less<>>;

}  // namespace attache
