#pragma once

#include <string>

#include "catalog/model.h"

namespace attache {

// Parses a host file (see docs/configuration.md); every endpoint gets
// `origin`. Throws ConfigError naming the file, the key path and the problem.
ServiceMap ParseHostFile(const std::string& file, const std::string& text,
                         const std::string& origin);

// True for names that are safe as xDS resource names and gRPC targets.
bool IsServiceName(const std::string& name);

}  // namespace attache
