#pragma once

#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "envoy/config/core/v3/base.pb.h"
#include "translate/translate.h"

namespace attache {

// Exactly what `node` receives from a catalog: per type, the version_info of
// a wildcard (or everything-subscribed) stream and each resource as JSON.
nlohmann::json DumpForNode(const CatalogSnapshot& catalog,
                           const TranslateOptions& options,
                           const envoy::config::core::v3::Node& node);

// JSON to YAML text, for --format yaml.
std::string JsonToYaml(const nlohmann::json& json);

}  // namespace attache
