#pragma once

#include <filesystem>

#include "config/config.h"

namespace attache {

struct ServeOptions {
  // Written (atomically) once both listeners are bound: {"xds":P,"admin":P}.
  std::filesystem::path ports_file;
};

// Runs the control plane until SIGINT or SIGTERM; returns the exit status.
int Serve(const Config& config, const ServeOptions& options);

}  // namespace attache
