#pragma once

#include <stdexcept>
#include <string>

namespace attache {

// A problem in a config or host file, worded for the operator:
// "<file>: <key path>: <problem>".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace attache
