#pragma once

#include <prometheus/metric_family.h>

#include <vector>

#include "catalog/catalog.h"
#include "xds/server/stream_registry.h"

namespace attache {

// Figures read from the current state when /metrics is scraped: each
// source's health and staleness, the catalog's size, the connected clients.
std::vector<prometheus::MetricFamily> StatusMetrics(
    const Catalog& catalog, const StreamRegistry& registry);

}  // namespace attache
