// Fuzzes the config parser (ParseConfig: YAML text -> Config). Any input
// must either parse into a config that keeps the documented rules or throw
// ConfigError; every other exception, crash or sanitizer report is a bug.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "config/config.h"
#include "config/config_error.h"
#include "fuzz_check.h"
#include "translate/translate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const attache::Config config =
        attache::ParseConfig("/etc/attache/attache.yaml", text);
    FUZZ_CHECK(attache::IsIpLiteral(config.xds_listen.host));
    FUZZ_CHECK(attache::IsIpLiteral(config.admin.listen.host));
    FUZZ_CHECK(!config.xds_listen.ToString().empty());
    FUZZ_CHECK(config.debounce <= config.max_delay);
    if (config.xds_ttl.ttl.count() > 0) {
      FUZZ_CHECK(config.xds_ttl.heartbeat.count() > 0);
      FUZZ_CHECK(config.xds_ttl.heartbeat < config.xds_ttl.ttl);
    }
    FUZZ_CHECK(config.defaults.local_percent >= 1 &&
               config.defaults.local_percent <= 100);
    FUZZ_CHECK(config.defaults.connect_timeout.count() > 0);
    FUZZ_CHECK(
        !attache::ClusterName(config.cluster_name_template, "echo").empty());
    FUZZ_CHECK(!config.sources.empty());
    std::set<std::string> names;
    for (const attache::SourceConfig& source : config.sources) {
      FUZZ_CHECK(!source.name.empty());
      FUZZ_CHECK(names.insert(source.name).second);
      FUZZ_CHECK(source.max_staleness.count() >= 0);
    }
  } catch (const attache::ConfigError&) {
    // A rejected config: the expected outcome for most inputs.
  }
  return 0;
}
