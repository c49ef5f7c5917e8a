#include "sources/registry/registry_service.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace attache {
namespace {

using Outcome = RegistryService::Outcome;

std::vector<Endpoint> Hosts(std::initializer_list<uint32_t> ports) {
  std::vector<Endpoint> hosts;
  for (const uint32_t port : ports) {
    Endpoint endpoint;
    endpoint.address = "10.0.0.1";
    endpoint.port = port;
    hosts.push_back(endpoint);
  }
  return hosts;
}

TEST(RegistryService, FirstAnswerIsAppliedEvenWhenEmpty) {
  RegistryService service(3);
  EXPECT_FALSE(service.known());
  EXPECT_EQ(service.Accept({}), Outcome::kApplied);
  EXPECT_TRUE(service.known());
  EXPECT_TRUE(service.endpoints().empty());
  EXPECT_EQ(service.Accept({}), Outcome::kUnchanged);
  EXPECT_EQ(service.Accept(Hosts({80})), Outcome::kApplied);
}

TEST(RegistryService, EmptyingNeedsConfirmation) {
  RegistryService service(3);
  EXPECT_EQ(service.Accept(Hosts({80, 81})), Outcome::kApplied);
  EXPECT_EQ(service.Accept({}), Outcome::kHeldEmpty);
  EXPECT_EQ(service.empty_streak(), 1U);
  EXPECT_EQ(service.Accept({}), Outcome::kHeldEmpty);
  EXPECT_EQ(service.endpoints(), Hosts({80, 81}));
  EXPECT_EQ(service.Accept({}), Outcome::kApplied);
  EXPECT_TRUE(service.endpoints().empty());
  EXPECT_EQ(service.empty_streak(), 0U);
}

TEST(RegistryService, HostsBetweenEmptyAnswersRestartTheCount) {
  RegistryService service(2);
  service.Accept(Hosts({80}));
  EXPECT_EQ(service.Accept({}), Outcome::kHeldEmpty);
  EXPECT_EQ(service.Accept(Hosts({80})), Outcome::kUnchanged);
  EXPECT_EQ(service.empty_streak(), 0U);
  EXPECT_EQ(service.Accept({}), Outcome::kHeldEmpty);
  EXPECT_EQ(service.endpoints(), Hosts({80}));
}

TEST(RegistryService, ConfirmEmptyOfOneAppliesAtOnce) {
  RegistryService service(1);
  service.Accept(Hosts({80}));
  EXPECT_EQ(service.Accept({}), Outcome::kApplied);
  EXPECT_TRUE(service.endpoints().empty());
}

}  // namespace
}  // namespace attache
