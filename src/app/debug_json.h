#pragma once

#include <nlohmann/json.hpp>

#include "catalog/catalog.h"

namespace attache {

// /debug/sources: each source's state, last error, last sync and staleness.
nlohmann::json SourcesJson(const Catalog& catalog);

// /debug/catalog: the merged catalog as services x sources, with endpoint
// counts by health per source (a Kubernetes source is one cluster).
nlohmann::json CatalogJson(const CatalogSnapshot& catalog,
                           const std::vector<std::string>& source_names);

}  // namespace attache
