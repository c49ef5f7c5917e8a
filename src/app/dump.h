#pragma once

#include <nlohmann/json.hpp>

#include "catalog/catalog.h"
#include "envoy/config/core/v3/base.pb.h"
#include "xds/cache/snapshot.h"

namespace attache {

// Exactly what `node` receives: its view and, per type, the version_info of
// a wildcard (or everything-subscribed) stream and each resource as JSON,
// decoded from the bytes that go on the wire.
nlohmann::json DumpForNode(const SnapshotSet& snapshots,
                           const envoy::config::core::v3::Node& node);
nlohmann::json DumpView(const ViewSnapshot& view);

// JSON to YAML text, for --format yaml.
std::string JsonToYaml(const nlohmann::json& json);

}  // namespace attache
