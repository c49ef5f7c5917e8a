#include "sources/registry/registry_service.h"

#include <gtest/gtest.h>

#include <set>
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

RemovalGuard ConfirmEmpty(uint32_t count) {
  RemovalGuard guard;
  guard.confirm_empty = count;
  return guard;
}

TEST(RegistryService, FirstAnswerIsAppliedEvenWhenEmpty) {
  RegistryService service(ConfirmEmpty(3));
  EXPECT_FALSE(service.known());
  EXPECT_EQ(service.Accept({}), Outcome::kApplied);
  EXPECT_TRUE(service.known());
  EXPECT_TRUE(service.endpoints().empty());
  EXPECT_EQ(service.Accept({}), Outcome::kUnchanged);
  EXPECT_EQ(service.Accept(Hosts({80})), Outcome::kApplied);
}

TEST(RegistryService, EmptyingNeedsConfirmation) {
  RegistryService service(ConfirmEmpty(3));
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
  RegistryService service(ConfirmEmpty(2));
  service.Accept(Hosts({80}));
  EXPECT_EQ(service.Accept({}), Outcome::kHeldEmpty);
  EXPECT_EQ(service.Accept(Hosts({80})), Outcome::kUnchanged);
  EXPECT_EQ(service.empty_streak(), 0U);
  EXPECT_EQ(service.Accept({}), Outcome::kHeldEmpty);
  EXPECT_EQ(service.endpoints(), Hosts({80}));
}

TEST(RegistryService, ConfirmEmptyOfOneAppliesAtOnce) {
  RegistryService service(ConfirmEmpty(1));
  service.Accept(Hosts({80}));
  EXPECT_EQ(service.Accept({}), Outcome::kApplied);
  EXPECT_TRUE(service.endpoints().empty());
}

using std::chrono::seconds;

std::set<uint32_t> Ports(const RegistryService& service) {
  std::set<uint32_t> ports;
  for (const Endpoint& endpoint : service.endpoints()) {
    ports.insert(endpoint.port);
  }
  return ports;
}

// A restarted registry refills as hosts check in again: 4 hosts, then an
// answer with 1 of them (75 % removed) is held; the removed hosts stay.
TEST(RegistryService, AMassRemovalIsHeldForItsWindow) {
  RegistryService service(RemovalGuard{});  // 30 %, 30 s
  const auto t0 = RegistryService::Clock::now();
  EXPECT_EQ(service.Accept(Hosts({80, 81, 82, 83}), t0), Outcome::kApplied);
  EXPECT_EQ(service.Accept(Hosts({81}), t0 + seconds(5)),
            Outcome::kHeldRemoval);
  EXPECT_EQ(Ports(service), (std::set<uint32_t>{80, 81, 82, 83}));
  EXPECT_EQ(service.held_back(), 3U);
  // More hosts check in: still a mass removal against what was served
  // before it started, and a new host is served at once.
  EXPECT_EQ(service.Accept(Hosts({81, 82, 90}), t0 + seconds(10)),
            Outcome::kHeldRemoval);
  EXPECT_EQ(Ports(service), (std::set<uint32_t>{80, 81, 82, 83, 90}));
  // Every host back: the hold ends, the answer applies.
  EXPECT_EQ(service.Accept(Hosts({80, 81, 82, 83, 90}), t0 + seconds(15)),
            Outcome::kApplied);
  EXPECT_EQ(service.held_back(), 0U);
}

TEST(RegistryService, AMassRemovalConfirmedOverTheWindowApplies) {
  RegistryService service(RemovalGuard{});
  const auto t0 = RegistryService::Clock::now();
  service.Accept(Hosts({80, 81}), t0);
  // 1 of 2 is 50 %: held (the case of a registry that lost its table).
  EXPECT_EQ(service.Accept(Hosts({80}), t0 + seconds(1)),
            Outcome::kHeldRemoval);
  EXPECT_EQ(service.Accept(Hosts({80}), t0 + seconds(30)),
            Outcome::kHeldRemoval);
  EXPECT_EQ(service.Accept(Hosts({80}), t0 + seconds(31)), Outcome::kApplied);
  EXPECT_EQ(Ports(service), (std::set<uint32_t>{80}));
}

TEST(RegistryService, SmallRemovalsApplyAtOnce) {
  RegistryService service(RemovalGuard{});
  const auto t0 = RegistryService::Clock::now();
  service.Accept(Hosts({80, 81, 82, 83}), t0);
  // 1 of 4 is 25 %, not more than 30 %.
  EXPECT_EQ(service.Accept(Hosts({80, 81, 82}), t0), Outcome::kApplied);
  EXPECT_EQ(Ports(service), (std::set<uint32_t>{80, 81, 82}));
}

TEST(RegistryService, AZeroWindowTurnsTheGuardOff) {
  RemovalGuard guard;
  guard.window = seconds(0);
  RegistryService service(guard);
  service.Accept(Hosts({80, 81, 82, 83}));
  EXPECT_EQ(service.Accept(Hosts({80})), Outcome::kApplied);
}

}  // namespace
}  // namespace attache
