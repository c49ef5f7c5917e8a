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
  EXPECT_EQ(config.admin.listen.ToString(), "127.0.0.1:19000");
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
  EXPECT_EQ(config.admin.listen.port, 9901);
  EXPECT_EQ(config.debounce, std::chrono::milliseconds(10));
  EXPECT_EQ(config.max_delay, std::chrono::seconds(2));
  EXPECT_EQ(config.defaults.connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(config.defaults.lb_policy, LbPolicy::kLeastRequest);
  EXPECT_EQ(config.cluster_name_template, "legacy-{service}");
  EXPECT_EQ(std::get<FileSourceConfig>(config.sources[0].spec).path,
            "/abs/hosts.yaml");
}

TEST(Config, AdminLimitsAndHealthListener) {
  const Config defaults = ParseConfig("/etc/attache.yaml", kMinimal);
  // Probes get the next port by default, or a free one with the admin's.
  EXPECT_EQ(defaults.admin.HealthListen().ToString(), "127.0.0.1:19001");
  EXPECT_EQ(defaults.admin.max_connections, 256U);
  EXPECT_EQ(defaults.admin.max_connections_per_peer, 16U);
  EXPECT_EQ(defaults.admin.idle_timeout, std::chrono::seconds(10));
  EXPECT_EQ(defaults.admin.max_request_header_bytes, 16U * 1024);
  const Config any_port =
      ParseConfig("/etc/attache.yaml",
                  std::string(kMinimal) + "admin: {listen: \"127.0.0.1:0\"}\n");
  EXPECT_EQ(any_port.admin.HealthListen().port, 0);

  const Config config =
      ParseConfig("/etc/attache.yaml", std::string(kMinimal) + R"(
admin:
  listen: 0.0.0.0:9901
  health_listen: 0.0.0.0:8080
  max_connections: 64
  max_connections_per_peer: 8
  idle_timeout: 3s
  max_request_header_bytes: 8192
)");
  EXPECT_EQ(config.admin.HealthListen().ToString(), "0.0.0.0:8080");
  EXPECT_EQ(config.admin.max_connections, 64U);
  EXPECT_EQ(config.admin.max_connections_per_peer, 8U);
  EXPECT_EQ(config.admin.idle_timeout, std::chrono::seconds(3));
  EXPECT_EQ(config.admin.max_request_header_bytes, 8192U);

  EXPECT_EQ(ErrorOf(std::string(kMinimal) +
                    "admin: {max_connections: 10, max_connections_per_peer: "
                    "20}\n"),
            "/etc/attache.yaml: admin.max_connections_per_peer: must not be "
            "more than max_connections");
  EXPECT_EQ(ErrorOf(std::string(kMinimal) +
                    "admin: {listen: \"127.0.0.1:9000\", health_listen: "
                    "\"127.0.0.1:9000\"}\n"),
            "/etc/attache.yaml: admin.health_listen: must differ from "
            "admin.listen");
  EXPECT_NE(ErrorOf(std::string(kMinimal) + "admin: {idle_timeout: 10ms}\n"),
            "");
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

TEST(Config, FailoverAndTtlAreOffByDefault) {
  const Config config = ParseConfig("/etc/attache.yaml", kMinimal);
  EXPECT_EQ(config.defaults.failover, FailoverPolicy::kFlat);
  EXPECT_EQ(config.defaults.local_percent, 80U);
  EXPECT_EQ(config.xds_ttl.ttl.count(), 0);
  EXPECT_EQ(config.xds_ttl.heartbeat.count(), 0);
}

TEST(Config, FailoverDefaults) {
  const std::pair<const char*, FailoverPolicy> cases[] = {
      {"flat", FailoverPolicy::kFlat},
      {"zone-failover", FailoverPolicy::kZoneFailover},
      {"weighted", FailoverPolicy::kWeighted}};
  for (const auto& [text, policy] : cases) {
    const Config config = ParseConfig("/etc/attache.yaml", std::string(R"(
xds: {listen: "127.0.0.1:1"}
defaults: {failover: )") + text + R"(, local_percent: 65}
sources: [{name: hosts, type: file, path: x}]
)");
    EXPECT_EQ(config.defaults.failover, policy) << text;
    EXPECT_EQ(config.defaults.local_percent, 65U) << text;
  }
  for (const char* percent : {"1", "100"}) {
    const Config config = ParseConfig("/etc/attache.yaml", std::string(R"(
xds: {listen: "127.0.0.1:1"}
defaults: {local_percent: )") + percent + R"(}
sources: [{name: hosts, type: file, path: x}]
)");
    EXPECT_EQ(std::to_string(config.defaults.local_percent), percent);
  }
}

TEST(Config, ResourceTtlAndHeartbeat) {
  const Config implied = ParseConfig("/etc/attache.yaml", R"(
xds: {listen: "127.0.0.1:1", resource_ttl: 30s}
sources: [{name: hosts, type: file, path: x}]
)");
  EXPECT_EQ(implied.xds_ttl.ttl, std::chrono::seconds(30));
  EXPECT_EQ(implied.xds_ttl.heartbeat, std::chrono::seconds(10));  // a third
  const Config explicit_beat = ParseConfig("/etc/attache.yaml", R"(
xds: {listen: "127.0.0.1:1", resource_ttl: 1m, heartbeat: 5s}
sources: [{name: hosts, type: file, path: x}]
)");
  EXPECT_EQ(explicit_beat.xds_ttl.ttl, std::chrono::minutes(1));
  EXPECT_EQ(explicit_beat.xds_ttl.heartbeat, std::chrono::seconds(5));
}

std::string ErrorWith(const std::string& xds, const std::string& defaults) {
  return ErrorOf("xds: {listen: \"127.0.0.1:1\"" + xds + "}\n" +
                 (defaults.empty() ? "" : "defaults: {" + defaults + "}\n") +
                 "sources: [{name: hosts, type: file, path: x}]\n");
}

TEST(Config, FailoverAndTtlErrorsNameFileKeyAndProblem) {
  EXPECT_EQ(ErrorWith("", "failover: nearest"),
            "/etc/attache.yaml: defaults.failover: must be flat, "
            "zone-failover or weighted, got \"nearest\"");
  EXPECT_EQ(ErrorWith("", "failover: FLAT"),
            "/etc/attache.yaml: defaults.failover: must be flat, "
            "zone-failover or weighted, got \"FLAT\"");
  EXPECT_EQ(ErrorWith("", "local_percent: 0"),
            "/etc/attache.yaml: defaults.local_percent: must be between 1 "
            "and 100, got 0");
  EXPECT_EQ(ErrorWith("", "local_percent: 101"),
            "/etc/attache.yaml: defaults.local_percent: must be between 1 "
            "and 100, got 101");
  EXPECT_EQ(ErrorWith("", "local_percent: eighty"),
            "/etc/attache.yaml: defaults.local_percent: must be a whole "
            "number, got \"eighty\"");
  EXPECT_EQ(ErrorWith("", "local_percent: 80%"),
            "/etc/attache.yaml: defaults.local_percent: must be a whole "
            "number, got \"80%\"");
  EXPECT_EQ(ErrorWith("", "failover: flat, local: 80"),
            "/etc/attache.yaml: defaults.local: unknown key (expected one "
            "of: local_percent, connect_timeout, lb_policy, failover, "
            "outlier_detection, health_check, circuit_breakers, retry_policy, "
            "healthy_panic_threshold, overprovisioning_factor)");
  EXPECT_EQ(ErrorWith(", resource_ttl: 500ms", ""),
            "/etc/attache.yaml: xds.resource_ttl: must be between 1s and "
            "86400s, got 500ms");
  EXPECT_EQ(ErrorWith(", resource_ttl: 2d", ""),
            "/etc/attache.yaml: xds.resource_ttl: must be a duration like "
            "250ms, 1s, 5m or 1h, got \"2d\"");
  EXPECT_EQ(ErrorWith(", heartbeat: 5s", ""),
            "/etc/attache.yaml: xds.heartbeat: needs xds.resource_ttl");
  EXPECT_EQ(ErrorWith(", resource_ttl: 10s, heartbeat: 10s", ""),
            "/etc/attache.yaml: xds.heartbeat: must be shorter than "
            "xds.resource_ttl");
  EXPECT_EQ(ErrorWith(", resource_ttl: 10s, heartbeat: 50ms", ""),
            "/etc/attache.yaml: xds.heartbeat: must be between 100ms and "
            "86400s, got 50ms");
  EXPECT_EQ(ErrorWith(", ttl: 10s", ""),
            "/etc/attache.yaml: xds.ttl: unknown key (expected one of: "
            "listen, resource_ttl, heartbeat, tls)");
}

// Strings that are not UTF-8 would end up in protobuf strings (cluster
// names from registry services, localities), which must be UTF-8.
TEST(Config, TextThatIsNotUtf8IsRejected) {
  EXPECT_EQ(ErrorOf("xds: {listen: \"127.0.0.1:1\"}\n"
                    "sources: [{name: r, type: registry, url: http://r, "
                    "services: [bill\xffing]}]\n"),
            "/etc/attache.yaml: sources[0].services[0]: must be UTF-8 text");
  EXPECT_EQ(ErrorOf("xds: {listen: \"127.0.0.1:1\"}\n"
                    "sources: [{name: k, type: kubernetes, "
                    "locality: {zone: \"\xc0\xaf\"}}]\n"),
            "/etc/attache.yaml: sources[0].locality.zone: must be UTF-8 text");
}

}  // namespace
}  // namespace attache
