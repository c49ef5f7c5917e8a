// Fuzzes the host-file parser (ParseHostFile, YAML and JSON, which is YAML
// too) and the translation of whatever it accepts: any input must either
// parse into services Envoy accepts or throw ConfigError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/config_error.h"
#include "fuzz_check.h"
#include "sources/file/host_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // The name only shows in messages; JSON files are read the same way.
  const std::string file =
      !text.empty() && text[0] == '{' ? "hosts.json" : "hosts.yaml";
  attache::ServiceMap services;
  try {
    services = attache::ParseHostFile(file, text, "fuzz");
  } catch (const attache::ConfigError&) {
    return 0;  // rejected: the last good content keeps serving
  }
  for (const auto& [name, service] : services) {
    FUZZ_CHECK(attache::IsServiceName(name));
  }
  attache::fuzz::CheckServiceMap(services, "fuzz");
  attache::fuzz::CheckTranslates(services,
                                 static_cast<uint8_t>(size > 0 ? data[0] : 0));
  return 0;
}
