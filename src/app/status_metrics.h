#pragma once

#include <prometheus/metric_family.h>

#include <vector>

#include "catalog/catalog.h"
#include "xds/server/stream_registry.h"
#include "xds/server/tls_credentials.h"

namespace attache {

// Figures read from the current state when /metrics is scraped: each
// source's health and staleness, the catalog's size, the connected clients,
// and with xds.tls (`tls` not null) the certificate's expiry.
std::vector<prometheus::MetricFamily> StatusMetrics(
    const Catalog& catalog, const StreamRegistry& registry,
    const TlsCredentials* tls);

}  // namespace attache
