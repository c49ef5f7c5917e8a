#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/model.h"

namespace attache {

// The answer as a whole is unusable (not JSON, not an object, no host list).
class RegistryResponseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What one answer of `GET /v1/registration/<service>` says.
struct RegistryAnswer {
  // Sorted by address and port, so a registry that shuffles its answer
  // changes nothing downstream.
  std::vector<Endpoint> endpoints;
  // One line per host that was skipped, e.g. "hosts[3]: port 0 is out of
  // range 1..65535". A bad host must not cost the service its good ones.
  std::vector<std::string> problems;
};

// Decodes the answer of the legacy registration API (Lyft's `discovery`).
// Endpoints carry `origin`. Throws RegistryResponseError when the answer as a
// whole is unusable.
RegistryAnswer DecodeRegistryResponse(std::string_view text,
                                      const std::string& origin);

}  // namespace attache
