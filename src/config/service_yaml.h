#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string_view>

#include "catalog/model.h"
#include "config/yaml_fields.h"

namespace attache {

// A service's settings, the same keys wherever they are written: the
// top-level `defaults:`, a service in a host file, a registry source's
// `defaults:`. The resilience keys are also the value of the Kubernetes
// annotation attache.io/resilience.
inline const std::initializer_list<std::string_view> kResilienceKeys = {
    "outlier_detection",       "health_check",
    "circuit_breakers",        "retry_policy",
    "healthy_panic_threshold", "overprovisioning_factor"};
inline const std::initializer_list<std::string_view> kServiceKeys = {
    "connect_timeout",
    "lb_policy",
    "failover",
    "outlier_detection",
    "health_check",
    "circuit_breakers",
    "retry_policy",
    "healthy_panic_threshold",
    "overprovisioning_factor"};

// Reads the service keys of `map` (other keys are the caller's to check);
// unset keys stay unset. Throws ConfigError naming the file, key and problem.
ServiceSettings ParseServiceSettings(const YAML::Node& map,
                                     const YamlPath& where);
ResilienceSettings ParseResilience(const YAML::Node& map,
                                   const YamlPath& where);

// The value of the annotation attache.io/resilience: a YAML (or JSON) map of
// the resilience keys. Throws ConfigError naming `where`.
ResilienceSettings ParseResilienceText(std::string_view text,
                                       const std::string& where);

}  // namespace attache
