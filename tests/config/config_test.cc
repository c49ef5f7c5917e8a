#include "config/config.h"

#include <gtest/gtest.h>

#include "config/config_error.h"

namespace attache {
namespace {

std::string ErrorOf(const std::string& text) {
  try {
    ParseConfig("/etc/attache.yaml", text);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

constexpr const char* kMinimal = R"(
xds: {listen: "127.0.0.1:18000"}
sources: [{name: hosts, type: file, path: hosts.yaml}]
)";

TEST(Config, MinimalConfigGetsDefaults) {
  const Config config = ParseConfig("/etc/attache.yaml", kMinimal);
  EXPECT_EQ(config.xds_listen.host, "127.0.0.1");
  EXPECT_EQ(config.xds_listen.port, 18000);
  EXPECT_EQ(config.admin_listen.ToString(), "127.0.0.1:19000");
  EXPECT_EQ(config.defaults.connect_timeout, std::chrono::seconds(1));
  EXPECT_EQ(config.defaults.lb_policy, LbPolicy::kRoundRobin);
  EXPECT_EQ(config.cluster_name_template, "{service}");
  ASSERT_EQ(config.sources.size(), 1U);
  // Relative host-file paths are relative to the config file's folder.
  EXPECT_EQ(std::get<FileSourceConfig>(config.sources[0].spec).path,
            "/etc/hosts.yaml");
}

TEST(Config, FullConfig) {
  const Config config = ParseConfig("/etc/attache.yaml", R"(
xds: {listen: "[::1]:0"}
admin: {listen: "0.0.0.0:9901"}
catalog: {debounce: 10ms, max_delay: 2s}
defaults: {connect_timeout: 250ms, lb_policy: LEAST_REQUEST}
naming: {cluster: "legacy-{service}"}
sources: [{name: a, type: file, path: /abs/hosts.yaml}]
)");
  EXPECT_EQ(config.xds_listen.ToString(), "[::1]:0");
  EXPECT_EQ(config.admin_listen.port, 9901);
  EXPECT_EQ(config.debounce, std::chrono::milliseconds(10));
  EXPECT_EQ(config.max_delay, std::chrono::seconds(2));
  EXPECT_EQ(config.defaults.connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(config.defaults.lb_policy, LbPolicy::kLeastRequest);
  EXPECT_EQ(config.cluster_name_template, "legacy-{service}");
  EXPECT_EQ(std::get<FileSourceConfig>(config.sources[0].spec).path,
            "/abs/hosts.yaml");
}

TEST(Config, ErrorsNameFileKeyAndProblem) {
  EXPECT_EQ(ErrorOf(std::string(kMinimal) + "bogus: 1\n"),
            "/etc/attache.yaml: bogus: unknown key (expected one of: xds, "
            "admin, catalog, defaults, naming, sources)");
  EXPECT_EQ(ErrorOf("sources: []\n"),
            "/etc/attache.yaml: xds: required key is missing");
  EXPECT_EQ(ErrorOf(R"(
xds: {listen: "127.0.0.1:99999"}
sources: [{name: hosts, type: file, path: hosts.yaml}]
)"),
            "/etc/attache.yaml: xds.listen: port must be 0..65535, got "
            "\"99999\"");
  EXPECT_EQ(ErrorOf(R"(
xds: {listen: "localhost:80"}
sources: [{name: hosts, type: file, path: hosts.yaml}]
)"),
            "/etc/attache.yaml: xds.listen: host must be an IP address, got "
            "\"localhost\"");
  EXPECT_EQ(ErrorOf(R"(
xds: {listen: "127.0.0.1:1"}
sources: [{name: hosts, type: file}]
)"),
            "/etc/attache.yaml: sources[0].path: required key is missing");
  EXPECT_EQ(ErrorOf(R"(
xds: {listen: "127.0.0.1:1"}
sources: [{name: hosts, type: kafka, path: x}]
)"),
            "/etc/attache.yaml: sources[0].type: unknown source type "
            "\"kafka\" (known types: file, kubernetes, registry)");
  EXPECT_EQ(ErrorOf(R"(
xds: {listen: "127.0.0.1:1"}
defaults: {connect_timeout: 5 seconds}
sources: [{name: hosts, type: file, path: x}]
)"),
            "/etc/attache.yaml: defaults.connect_timeout: must be a duration "
            "like 250ms, 1s, 5m or 1h, got \"5 seconds\"");
  EXPECT_EQ(ErrorOf(R"(
xds: {listen: "127.0.0.1:1"}
defaults: {lb_policy: MAGLEV}
sources: [{name: hosts, type: file, path: x}]
)"),
            "/etc/attache.yaml: defaults.lb_policy: must be ROUND_ROBIN, "
            "LEAST_REQUEST or RING_HASH, got \"MAGLEV\"");
  EXPECT_EQ(ErrorOf(R"(
xds: {listen: "127.0.0.1:1"}
naming: {cluster: "{svc}"}
sources: [{name: hosts, type: file, path: x}]
)"),
            "/etc/attache.yaml: naming.cluster: unknown placeholder {svc} "
            "(known placeholders: {service})");
  EXPECT_EQ(ErrorOf(R"(
xds: {listen: "127.0.0.1:1"}
sources: [{name: a, type: file, path: x}, {name: a, type: file, path: y}]
)"),
            "/etc/attache.yaml: sources[1].name: duplicate source name \"a\"");
  EXPECT_EQ(ErrorOf(R"(
xds: {listen: "127.0.0.1:1"}
sources: {name: a}
)"),
            "/etc/attache.yaml: sources: must be a list, got a mapping");
  EXPECT_EQ(ErrorOf("xds: [unclosed\n"),
            "/etc/attache.yaml:2:1: YAML syntax error: end of sequence flow "
            "not found");
}

}  // namespace
}  // namespace attache
