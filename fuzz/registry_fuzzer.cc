// Fuzzes the decoder of the legacy registry's answers
// (DecodeRegistryResponse) and the translation of what it accepts. A broken
// or hostile registry must cost at most the hosts it got wrong: the answer
// is either rejected with RegistryResponseError or gives valid endpoints,
// and the problems it reports stay short and printable.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "fuzz_check.h"
#include "sources/registry/registry_response.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  attache::RegistryAnswer answer;
  try {
    answer = attache::DecodeRegistryResponse(text, "registry");
  } catch (const attache::RegistryResponseError& error) {
    FUZZ_CHECK(error.what()[0] != '\0');
    return 0;
  }
  for (size_t i = 1; i < answer.endpoints.size(); ++i) {
    const attache::Endpoint& a = answer.endpoints[i - 1];
    const attache::Endpoint& b = answer.endpoints[i];
    FUZZ_CHECK(std::tie(a.address, a.port) < std::tie(b.address, b.port));
  }
  for (const attache::Endpoint& endpoint : answer.endpoints) {
    FUZZ_CHECK(endpoint.weight <= 1'000'000);
  }
  for (const std::string& problem : answer.problems) {
    FUZZ_CHECK(problem.rfind("hosts[", 0) == 0);
    FUZZ_CHECK(problem.size() <= 256);
    for (const char c : problem) {
      FUZZ_CHECK(c >= 0x20 && c < 0x7f);
    }
  }
  attache::ServiceMap services;
  services["echo"] =
      attache::Service{.settings = {}, .endpoints = answer.endpoints};
  attache::fuzz::CheckServiceMap(services, "registry");
  attache::fuzz::CheckTranslates(services,
                                 static_cast<uint8_t>(size > 0 ? data[0] : 0));
  return 0;
}
