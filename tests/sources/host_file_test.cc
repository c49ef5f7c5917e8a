#include "sources/file/host_file.h"

#include <gtest/gtest.h>

#include "config/config_error.h"

namespace attache {
namespace {

std::string ErrorOf(const std::string& text) {
  try {
    ParseHostFile("hosts.yaml", text, "legacy");
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(HostFile, ParsesServicesEndpointsAndSettings) {
  const ServiceMap services = ParseHostFile("hosts.yaml", R"(
services:
  echo:
    connect_timeout: 250ms
    lb_policy: RING_HASH
    endpoints:
      - {address: 127.0.0.1, port: 8081, region: r1, zone: z1, sub_zone: s1,
         weight: 5, health: draining}
      - {address: "::1", port: 8082}
  empty:
  no-endpoints: {}
)",
                                            "legacy");
  ASSERT_EQ(services.size(), 3U);
  const Service& echo = *services.at("echo");
  EXPECT_EQ(echo.settings.connect_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(echo.settings.lb_policy, LbPolicy::kRingHash);
  ASSERT_EQ(echo.endpoints.size(), 2U);
  const Endpoint& first = echo.endpoints[0];
  EXPECT_EQ(first.address, "127.0.0.1");
  EXPECT_EQ(first.port, 8081U);
  EXPECT_EQ(first.locality, (Locality{"r1", "z1", "s1"}));
  EXPECT_EQ(first.weight, 5U);
  EXPECT_EQ(first.health, Health::kDraining);
  EXPECT_EQ(first.origin, "legacy");
  const Endpoint& second = echo.endpoints[1];
  EXPECT_EQ(second.address, "::1");
  EXPECT_EQ(second.weight, 1U);
  EXPECT_EQ(second.health, Health::kHealthy);
  EXPECT_FALSE(services.at("empty")->settings.lb_policy.has_value());
  EXPECT_TRUE(services.at("no-endpoints")->endpoints.empty());
}

TEST(HostFile, EmptyServiceListIsValid) {
  EXPECT_TRUE(ParseHostFile("hosts.yaml", "services: {}\n", "x").empty());
  EXPECT_TRUE(ParseHostFile("hosts.yaml", "services:\n", "x").empty());
}

TEST(HostFile, FailoverPerService) {
  const ServiceMap services = ParseHostFile("hosts.yaml", R"(
services:
  plain: {}
  flat: {failover: flat}
  zoned: {failover: zone-failover}
  weighted:
    failover: weighted
    endpoints: [{address: 10.0.0.1, port: 80, region: r1, zone: z1}]
)",
                                            "legacy");
  EXPECT_FALSE(services.at("plain")->settings.failover.has_value());
  EXPECT_EQ(services.at("flat")->settings.failover, FailoverPolicy::kFlat);
  EXPECT_EQ(services.at("zoned")->settings.failover,
            FailoverPolicy::kZoneFailover);
  EXPECT_EQ(services.at("weighted")->settings.failover,
            FailoverPolicy::kWeighted);
  EXPECT_EQ(services.at("weighted")->endpoints.size(), 1U);
  EXPECT_EQ(ErrorOf("services: {echo: {failover: Weighted}}\n"),
            "hosts.yaml: services.echo.failover: must be flat, zone-failover "
            "or weighted, got \"Weighted\"");
}

TEST(HostFile, ErrorsNameFileKeyAndProblem) {
  EXPECT_EQ(ErrorOf(""),
            "hosts.yaml: file is empty (write \"services: {}\" for no "
            "services)");
  EXPECT_EQ(ErrorOf("servicez: {}\n"),
            "hosts.yaml: servicez: unknown key (expected one of: services)");
  EXPECT_EQ(ErrorOf("services: {echo: {endpoints: [{address: 127.0.0.1, "
                    "port: 70000}]}}\n"),
            "hosts.yaml: services.echo.endpoints[0].port: must be between 1 "
            "and 65535, got 70000");
  EXPECT_EQ(ErrorOf("services: {echo: {endpoints: [{address: example.com, "
                    "port: 80}]}}\n"),
            "hosts.yaml: services.echo.endpoints[0].address: must be an IPv4 "
            "or IPv6 address, got \"example.com\"");
  EXPECT_EQ(ErrorOf("services: {echo: {endpoints: [{address: 127.0.0.1}]}}\n"),
            "hosts.yaml: services.echo.endpoints[0].port: required key is "
            "missing");
  EXPECT_EQ(ErrorOf("services: {echo: {endpoints: [{address: 127.0.0.1, "
                    "port: 1, health: sick}]}}\n"),
            "hosts.yaml: services.echo.endpoints[0].health: must be healthy, "
            "draining or unhealthy, got \"sick\"");
  EXPECT_EQ(ErrorOf("services: {echo: {endpoints: [{address: 127.0.0.1, "
                    "port: 1, weight: 0}]}}\n"),
            "hosts.yaml: services.echo.endpoints[0].weight: must be between 1 "
            "and 1000000, got 0");
  EXPECT_EQ(ErrorOf("services: {echo: {endpoints: [{address: 127.0.0.1, "
                    "port: 1}, {address: 127.0.0.1, port: 1}]}}\n"),
            "hosts.yaml: services.echo.endpoints[1]: duplicate endpoint "
            "127.0.0.1:1");
  EXPECT_EQ(ErrorOf("services: {\"bad name\": {}}\n"),
            "hosts.yaml: services.bad name: service name must match "
            "[A-Za-z0-9._-]+");
  EXPECT_EQ(ErrorOf("services: {echo: {endpoints: {address: 127.0.0.1}}}\n"),
            "hosts.yaml: services.echo.endpoints: must be a list, got a "
            "mapping");
  EXPECT_EQ(ErrorOf("services: {echo: {endpoint: []}}\n"),
            "hosts.yaml: services.echo.endpoint: unknown key (expected one "
            "of: endpoints, connect_timeout, lb_policy, failover, "
            "outlier_detection, health_check, circuit_breakers, retry_policy, "
            "healthy_panic_threshold, overprovisioning_factor)");
  EXPECT_EQ(ErrorOf("services: {echo: {failover: nearest}}\n"),
            "hosts.yaml: services.echo.failover: must be flat, zone-failover "
            "or weighted, got \"nearest\"");
}

// Found by fuzz/host_file_fuzzer: yaml-cpp passes any byte through, and a
// locality that is not UTF-8 made every response carrying the service's
// load assignment undecodable (protobuf strings must be UTF-8).
TEST(HostFile, TextThatIsNotUtf8IsRejected) {
  EXPECT_EQ(
      ErrorOf("services:\n  echo:\n    endpoints:\n"
              "      - {address: 127.0.0.1, port: 80, region: r\xe9gion}\n"),
      "hosts.yaml: services.echo.endpoints[0].region: must be UTF-8 "
      "text");
  EXPECT_EQ(
      ErrorOf("services:\n  echo:\n    endpoints:\n"
              "      - {address: 127.0.0.1, port: 80, zone: z\xc3\xbcrich}\n"),
      "");
}

// inet_pton stops at a NUL, so an address with one and anything after it
// passed for the address before it.
TEST(HostFile, AddressWithANulIsRejected) {
  const std::string error = ErrorOf(
      "services: {echo: {endpoints: [{address: \"127.0.0.1\\0x\", port: "
      "80}]}}\n");
  EXPECT_NE(error.find("services.echo.endpoints[0].address: must be an IPv4 "
                       "or IPv6 address"),
            std::string::npos)
      << error;
}

}  // namespace
}  // namespace attache
