#include "sources/registry/registry_response.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace attache {
namespace {

using Lines = std::vector<std::string>;

::testing::AssertionResult Contains(const std::string& text,
                                    const std::string& part) {
  if (text.find(part) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not contain \"" << part << "\"";
}

// One answer with `hosts_json` as its host list, as the registry frames it.
std::string Answer(const std::string& hosts_json) {
  return R"({"service": "echo", "env": "production", "hosts": )" + hosts_json +
         "}";
}

std::string ErrorOf(const std::string& text) {
  try {
    DecodeRegistryResponse(text, "legacy");
  } catch (const RegistryResponseError& error) {
    return error.what();
  }
  return "";
}

TEST(RegistryResponse, MapsEveryFieldOfAHost) {
  const RegistryAnswer answer = DecodeRegistryResponse(Answer(R"([
    {"ip_address": "10.0.0.2", "port": 8080, "revision": "abc123",
     "service": "echo", "service_repo_name": "echo-repo",
     "last_check_in": "2024-01-01T00:00:00Z",
     "tags": {"az": "us-east-1b", "region": "us-east-1",
              "instance_id": "i-0b", "canary": true,
              "load_balancing_weight": 7}},
    {"ip_address": "10.0.0.1", "port": 80,
     "tags": {"az": "us-east-1a", "region": "us-east-1",
              "instance_id": "i-0a", "canary": false,
              "load_balancing_weight": 1}}
  ])"),
                                                       "legacy");
  EXPECT_TRUE(answer.problems.empty());
  ASSERT_EQ(answer.endpoints.size(), 2U);
  // Sorted by address, whatever order the registry used.
  const Endpoint& first = answer.endpoints[0];
  EXPECT_EQ(first.address, "10.0.0.1");
  EXPECT_EQ(first.port, 80U);
  EXPECT_EQ(first.locality.zone, "us-east-1a");
  EXPECT_EQ(first.locality.region, "us-east-1");
  EXPECT_EQ(first.locality.sub_zone, "");
  EXPECT_EQ(first.weight, 1U);
  EXPECT_FALSE(first.canary);
  EXPECT_EQ(first.health, Health::kHealthy);
  EXPECT_EQ(first.origin, "legacy");
  EXPECT_EQ(first.metadata.at("instance_id"), "i-0a");

  const Endpoint& second = answer.endpoints[1];
  EXPECT_EQ(second.address, "10.0.0.2");
  EXPECT_EQ(second.port, 8080U);
  EXPECT_EQ(second.locality.zone, "us-east-1b");
  EXPECT_EQ(second.weight, 7U);
  EXPECT_TRUE(second.canary);
  // Only the instance id becomes metadata: the check-in time changes on
  // every heartbeat and must not cause pushes.
  EXPECT_EQ(second.metadata.size(), 1U);
  EXPECT_EQ(second.metadata.at("instance_id"), "i-0b");
}

TEST(RegistryResponse, ToleratesMissingOptionalAndUnknownFields) {
  const RegistryAnswer answer = DecodeRegistryResponse(
      R"({"hosts": [
        {"ip_address": "10.0.0.1", "port": 80},
        {"ip_address": "10.0.0.2", "port": 81, "tags": null},
        {"ip_address": "10.0.0.3", "port": 82, "tags": {}},
        {"ip_address": "10.0.0.4", "port": 83, "new_field": [1, 2],
         "tags": {"az": null, "region": null, "instance_id": null,
                  "canary": null, "load_balancing_weight": null,
                  "rack": "r7"}},
        {"ip_address": "::1", "port": 84}
      ], "something_new": {"a": 1}})",
      "legacy");
  EXPECT_TRUE(answer.problems.empty());
  ASSERT_EQ(answer.endpoints.size(), 5U);
  for (const Endpoint& endpoint : answer.endpoints) {
    EXPECT_EQ(endpoint.weight, 1U) << endpoint.address;
    EXPECT_FALSE(endpoint.canary) << endpoint.address;
    EXPECT_EQ(endpoint.locality, Locality{}) << endpoint.address;
    EXPECT_TRUE(endpoint.metadata.empty()) << endpoint.address;
  }
  EXPECT_EQ(answer.endpoints[0].address, "10.0.0.1");
  EXPECT_EQ(answer.endpoints[4].address, "::1");
}

TEST(RegistryResponse, EmptyHostListIsAValidAnswer) {
  const RegistryAnswer answer = DecodeRegistryResponse(Answer("[]"), "legacy");
  EXPECT_TRUE(answer.endpoints.empty());
  EXPECT_TRUE(answer.problems.empty());
}

TEST(RegistryResponse, SkipsBadHostsAndKeepsTheGoodOnes) {
  const RegistryAnswer answer = DecodeRegistryResponse(Answer(R"([
    {"ip_address": "10.0.0.1", "port": 80},
    {"port": 80},
    {"ip_address": "registry.example.com", "port": 80},
    {"ip_address": "[::1]", "port": 80},
    {"ip_address": 167772161, "port": 80},
    {"ip_address": "10.0.0.2"},
    {"ip_address": "10.0.0.2", "port": 0},
    {"ip_address": "10.0.0.2", "port": 65536},
    {"ip_address": "10.0.0.2", "port": "80"},
    {"ip_address": "10.0.0.2", "port": 80.5},
    {"ip_address": "10.0.0.2", "port": -1},
    {"ip_address": "10.0.0.2", "port": 18446744073709551615},
    "10.0.0.2:80",
    {"ip_address": "10.0.0.2", "port": 80, "tags": "az=us-east-1a"},
    {"ip_address": "10.0.0.2", "port": 80, "tags": {"az": 1}},
    {"ip_address": "10.0.0.2", "port": 80, "tags": {"canary": "yes"}},
    {"ip_address": "10.0.0.2", "port": 80, "tags": {"canary": 1}},
    {"ip_address": "10.0.0.2", "port": 80,
     "tags": {"load_balancing_weight": 0}},
    {"ip_address": "10.0.0.3", "port": 65535}
  ])"),
                                                       "legacy");
  ASSERT_EQ(answer.endpoints.size(), 2U);
  EXPECT_EQ(answer.endpoints[0].address, "10.0.0.1");
  EXPECT_EQ(answer.endpoints[1].address, "10.0.0.3");
  EXPECT_EQ(answer.endpoints[1].port, 65535U);
  ASSERT_EQ(answer.problems.size(), 17U);
  EXPECT_EQ(answer.problems[0], "hosts[1]: ip_address is missing");
  EXPECT_EQ(answer.problems[1],
            "hosts[2]: ip_address \"registry.example.com\" is not an IP "
            "literal");
  EXPECT_TRUE(Contains(answer.problems[2], "is not an IP literal"));
  EXPECT_EQ(answer.problems[3],
            "hosts[4]: ip_address is a number, not a string");
  EXPECT_EQ(answer.problems[4], "hosts[5]: port is missing");
  EXPECT_EQ(answer.problems[5], "hosts[6]: port 0 is out of range 1..65535");
  EXPECT_EQ(answer.problems[6],
            "hosts[7]: port 65536 is out of range 1..65535");
  EXPECT_EQ(answer.problems[7], "hosts[8]: port is a string, not an integer");
  EXPECT_EQ(answer.problems[8], "hosts[9]: port is a number, not an integer");
  EXPECT_EQ(answer.problems[9], "hosts[10]: port -1 is out of range 1..65535");
  EXPECT_EQ(answer.problems[10], "hosts[11]: port is out of range 1..65535");
  EXPECT_EQ(answer.problems[11], "hosts[12]: is a string, not an object");
  EXPECT_EQ(answer.problems[12], "hosts[13]: tags is a string, not an object");
  EXPECT_EQ(answer.problems[13], "hosts[14]: az is a number, not a string");
  EXPECT_EQ(answer.problems[14],
            "hosts[15]: canary \"yes\" is neither true nor false");
  EXPECT_EQ(answer.problems[15],
            "hosts[16]: canary is a number, not a boolean");
  EXPECT_EQ(answer.problems[16],
            "hosts[17]: load_balancing_weight 0 is out of range 1..1000000");
}

TEST(RegistryResponse, ProblemsNeverEchoLongOrControlText) {
  const std::string long_name(500, 'x');
  const RegistryAnswer answer = DecodeRegistryResponse(
      Answer(R"([{"ip_address": ")" + long_name +
             R"(", "port": 80}, {"ip_address": "a\nb\u0007", "port": 80}])"),
      "legacy");
  ASSERT_EQ(answer.problems.size(), 2U);
  EXPECT_LT(answer.problems[0].size(), 150U);
  EXPECT_TRUE(Contains(answer.problems[0], "...\""));
  EXPECT_EQ(answer.problems[1],
            "hosts[1]: ip_address \"a?b?\" is not an IP literal");
}

TEST(RegistryResponse, DuplicateAddressAndPortKeepsTheFirst) {
  const RegistryAnswer answer = DecodeRegistryResponse(Answer(R"([
    {"ip_address": "10.0.0.1", "port": 80, "tags": {"az": "first"}},
    {"ip_address": "10.0.0.1", "port": 81, "tags": {"az": "other port"}},
    {"ip_address": "10.0.0.1", "port": 80, "tags": {"az": "second"}},
    {"ip_address": "::1", "port": 80},
    {"ip_address": "::1", "port": 80}
  ])"),
                                                       "legacy");
  ASSERT_EQ(answer.endpoints.size(), 3U);
  EXPECT_EQ(answer.endpoints[0].locality.zone, "first");
  EXPECT_EQ(answer.endpoints[1].port, 81U);
  EXPECT_EQ(answer.problems, (Lines{"hosts[2]: 10.0.0.1:80 repeats hosts[0]",
                                    "hosts[4]: [::1]:80 repeats hosts[3]"}));
}

TEST(RegistryResponse, CanaryIsABooleanOrItsText) {
  const RegistryAnswer answer = DecodeRegistryResponse(Answer(R"([
    {"ip_address": "10.0.0.1", "port": 1, "tags": {"canary": true}},
    {"ip_address": "10.0.0.2", "port": 1, "tags": {"canary": false}},
    {"ip_address": "10.0.0.3", "port": 1, "tags": {"canary": "true"}},
    {"ip_address": "10.0.0.4", "port": 1, "tags": {"canary": "false"}},
    {"ip_address": "10.0.0.5", "port": 1, "tags": {"canary": "True"}},
    {"ip_address": "10.0.0.6", "port": 1, "tags": {"canary": "FALSE"}},
    {"ip_address": "10.0.0.7", "port": 1, "tags": {}},
    {"ip_address": "10.0.0.8", "port": 1, "tags": {"canary": ""}},
    {"ip_address": "10.0.0.9", "port": 1, "tags": {"canary": [true]}}
  ])"),
                                                       "legacy");
  ASSERT_EQ(answer.endpoints.size(), 7U);
  std::vector<bool> canary;
  for (const Endpoint& endpoint : answer.endpoints) {
    canary.push_back(endpoint.canary);
  }
  EXPECT_EQ(canary,
            (std::vector<bool>{true, false, true, false, true, false, false}));
  EXPECT_EQ(answer.problems,
            (Lines{"hosts[7]: canary \"\" is neither true nor false",
                   "hosts[8]: canary is a list, not a boolean"}));
}

TEST(RegistryResponse, WeightIsANumberOrNumericTextInRange) {
  const RegistryAnswer answer = DecodeRegistryResponse(Answer(R"([
    {"ip_address": "10.0.0.1", "port": 1, "tags": {"load_balancing_weight": 1}},
    {"ip_address": "10.0.0.2", "port": 1,
     "tags": {"load_balancing_weight": 1000000}},
    {"ip_address": "10.0.0.3", "port": 1, "tags": {"load_balancing_weight": "25"}},
    {"ip_address": "10.0.0.4", "port": 1,
     "tags": {"load_balancing_weight": "1000000"}},
    {"ip_address": "10.0.0.5", "port": 1, "tags": {"az": "a"}},
    {"ip_address": "10.0.0.6", "port": 1,
     "tags": {"load_balancing_weight": 1000001}},
    {"ip_address": "10.0.0.7", "port": 1, "tags": {"load_balancing_weight": "0"}},
    {"ip_address": "10.0.0.8", "port": 1, "tags": {"load_balancing_weight": "2x"}},
    {"ip_address": "10.0.0.9", "port": 1, "tags": {"load_balancing_weight": ""}},
    {"ip_address": "10.0.1.0", "port": 1, "tags": {"load_balancing_weight": 2.5}},
    {"ip_address": "10.0.1.1", "port": 1, "tags": {"load_balancing_weight": -3}},
    {"ip_address": "10.0.1.2", "port": 1,
     "tags": {"load_balancing_weight": "99999999999999999999999"}},
    {"ip_address": "10.0.1.3", "port": 1, "tags": {"load_balancing_weight": true}}
  ])"),
                                                       "legacy");
  std::vector<uint32_t> weights;
  for (const Endpoint& endpoint : answer.endpoints) {
    weights.push_back(endpoint.weight);
  }
  EXPECT_EQ(weights, (std::vector<uint32_t>{1, 1000000, 25, 1000000, 1}));
  const std::string huge = R"(hosts[11]: load_balancing_weight )"
                           R"("99999999999999999999999" is out of range )"
                           R"(1..1000000)";
  EXPECT_EQ(
      answer.problems,
      (Lines{
          "hosts[5]: load_balancing_weight 1000001 is out of range 1..1000000",
          "hosts[6]: load_balancing_weight 0 is out of range 1..1000000",
          "hosts[7]: load_balancing_weight \"2x\" is not an integer",
          "hosts[8]: load_balancing_weight \"\" is not an integer",
          "hosts[9]: load_balancing_weight is a number, not an integer",
          "hosts[10]: load_balancing_weight -3 is out of range 1..1000000",
          huge,
          "hosts[12]: load_balancing_weight is a boolean, not an integer"}));
}

TEST(RegistryResponse, AnUnusableAnswerIsAnError) {
  EXPECT_TRUE(Contains(ErrorOf(""), "not valid JSON"));
  EXPECT_TRUE(
      Contains(ErrorOf("<html>502 Bad Gateway</html>"), "not valid JSON"));
  EXPECT_TRUE(Contains(ErrorOf(R"({"hosts": [)"), "not valid JSON"));
  EXPECT_EQ(ErrorOf("[]"), "the answer is a list, not an object");
  EXPECT_EQ(ErrorOf(R"({"service": "echo", "env": "prod"})"),
            "the answer has no \"hosts\"");
  EXPECT_EQ(ErrorOf(R"({"hosts": null})"), "the answer has no \"hosts\"");
  EXPECT_EQ(ErrorOf(R"({"hosts": {"ip_address": "10.0.0.1"}})"),
            "\"hosts\" is an object, not a list");
  EXPECT_EQ(ErrorOf(Answer("[]")), "");
}

// inet_pton stops at a NUL: "10.0.0.1\u0000..." passed for 10.0.0.1 and
// carried whatever followed into Envoy's address, logs and the dashboard.
TEST(RegistryResponse, AnAddressWithANulIsNotAnIpLiteral) {
  const RegistryAnswer answer = DecodeRegistryResponse(
      Answer(R"([{"ip_address": "10.0.0.1\u0000\u001b[2J", "port": 80}])"),
      "legacy");
  EXPECT_TRUE(answer.endpoints.empty());
  EXPECT_EQ(answer.problems,
            (Lines{"hosts[0]: ip_address \"10.0.0.1??[2J\" is not an IP "
                   "literal"}));
}

}  // namespace
}  // namespace attache
