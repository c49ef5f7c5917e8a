#include <gtest/gtest.h>

#include "xds/server/delta_state.h"

namespace attache {
namespace {

using envoy::service::discovery::v3::DeltaDiscoveryRequest;

ViewSnapshotPtr Echo(LbPolicy policy) {
  CatalogSnapshot catalog;
  catalog.generation = 1;
  Endpoint endpoint;
  endpoint.address = "127.0.0.1";
  endpoint.port = 80;
  Service service;
  service.endpoints = {endpoint};
  service.settings.lb_policy = policy;
  catalog.services["echo"] = service;
  return BuildSnapshotSet(catalog, TranslateOptions{}, nullptr)
      ->For(Flavor::kEnvoy);
}

DeltaDiscoveryRequest Initial(ResourceType type,
                              const std::vector<std::string>& names,
                              const ResourceMap& held) {
  DeltaDiscoveryRequest request;
  request.set_type_url(std::string(TypeUrl(type)));
  for (const auto& name : names) request.add_resource_names_subscribe(name);
  for (const auto& [name, resource] : held) {
    (*request.mutable_initial_resource_versions())[name] = resource->version;
  }
  return request;
}

// Envoy reconnects holding a cluster that changed meanwhile and its load
// assignment that did not: it warms the new cluster and waits for the
// assignment, so that must be sent although the client lists it as held.
// Both orders in which the requests and the first poll can interleave.
TEST(DeltaReconnect, ChangedClusterGetsItsAssignmentAgain) {
  const auto before = Echo(LbPolicy::kRoundRobin);
  const auto after = Echo(LbPolicy::kLeastRequest);
  for (bool poll_between : {true, false}) {
    DeltaState state;
    state.OnRequest(Initial(ResourceType::kCluster, {},
                            before->Of(ResourceType::kCluster)));
    std::vector<PendingDeltaResponse> sent;
    if (poll_between) {
      sent = state.Poll(*after);
    }
    state.OnRequest(Initial(ResourceType::kEndpoint, {"echo"},
                            before->Of(ResourceType::kEndpoint)));
    for (auto& response : state.Poll(*after)) {
      sent.push_back(std::move(response));
    }
    ASSERT_EQ(sent.size(), 2U) << poll_between;
    EXPECT_EQ(sent[0].type, ResourceType::kCluster);
    EXPECT_EQ(sent[1].type, ResourceType::kEndpoint);
    ASSERT_EQ(sent[1].resources.size(), 1U);
    EXPECT_EQ(sent[1].resources[0]->name, "echo");
  }
}

}  // namespace
}  // namespace attache
