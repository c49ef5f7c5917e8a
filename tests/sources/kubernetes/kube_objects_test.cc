#include "sources/kubernetes/kube_objects.h"

#include <gtest/gtest.h>

namespace attache {
namespace {

TEST(KubeObjects, DecodesAServiceListWithContinueToken) {
  std::string error;
  const auto list = DecodeServiceList(R"({
    "kind": "ServiceList",
    "metadata": {"resourceVersion": "42", "continue": "next-page"},
    "items": [{
      "metadata": {"name": "echo", "namespace": "default",
                   "annotations": {"attache.io/export": "false"}},
      "spec": {"type": "ClusterIP", "ports": [
        {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"port": 9090}]}
    }]})",
                                      &error);
  ASSERT_TRUE(list.has_value()) << error;
  EXPECT_EQ(list->resource_version, "42");
  EXPECT_EQ(list->continue_token, "next-page");
  ASSERT_EQ(list->items.size(), 1U);
  const KubeService& echo = list->items[0];
  EXPECT_EQ(KeyOf(echo), "default/echo");
  EXPECT_EQ(echo.annotations.at("attache.io/export"), "false");
  ASSERT_EQ(echo.ports.size(), 2U);
  EXPECT_EQ(echo.ports[0].name, "http");
  EXPECT_EQ(echo.ports[0].port, 80U);
  EXPECT_EQ(echo.ports[1].protocol, "TCP");
}

TEST(KubeObjects, DecodesEndpointSliceEvents) {
  std::string error;
  const auto event = DecodeEndpointSliceEvent(
      R"({"type":"MODIFIED","object":{"metadata":{"name":"echo-abc",)"
      R"("namespace":"default","resourceVersion":"77","labels":{)"
      R"("kubernetes.io/service-name":"echo"}},"addressType":"IPv4",)"
      R"("ports":[{"name":"http","port":8080,"protocol":"TCP"}],)"
      R"("endpoints":[{"addresses":["192.0.2.1"],"conditions":{"ready":false,)"
      R"("serving":true,"terminating":true},"zone":"z1","nodeName":"n1"}]}})",
      &error);
  ASSERT_TRUE(event.has_value()) << error;
  EXPECT_EQ(event->type, KubeWatchEvent<KubeEndpointSlice>::Type::kModified);
  EXPECT_EQ(event->resource_version, "77");
  const KubeEndpointSlice& slice = *event->object;
  EXPECT_EQ(slice.service_name, "echo");
  EXPECT_EQ(slice.ports[0].port, 8080U);
  ASSERT_EQ(slice.endpoints.size(), 1U);
  EXPECT_EQ(slice.endpoints[0].ready, false);
  EXPECT_EQ(slice.endpoints[0].terminating, true);
  EXPECT_EQ(slice.endpoints[0].zone, "z1");
  EXPECT_EQ(slice.endpoints[0].node_name, "n1");
}

TEST(KubeObjects, BookmarksAndExpiredErrors) {
  std::string error;
  const auto bookmark = DecodeServiceEvent(
      R"({"type":"BOOKMARK","object":{"kind":"Service","metadata":{"resourceVersion":"99"}}})",
      &error);
  ASSERT_TRUE(bookmark.has_value()) << error;
  EXPECT_EQ(bookmark->type, KubeWatchEvent<KubeService>::Type::kBookmark);
  EXPECT_EQ(bookmark->resource_version, "99");
  const auto expired = DecodeServiceEvent(
      R"({"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old resource version"}})",
      &error);
  ASSERT_TRUE(expired.has_value()) << error;
  EXPECT_EQ(expired->type, KubeWatchEvent<KubeService>::Type::kError);
  EXPECT_EQ(expired->error_code, 410);
}

TEST(KubeObjects, MalformedInputIsAnErrorNotACrash) {
  std::string error;
  EXPECT_FALSE(DecodeServiceEvent("{not json", &error).has_value());
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(DecodeServiceEvent(R"({"type":"ADDED"})", &error).has_value());
  EXPECT_FALSE(
      DecodeServiceEvent(
          R"({"type":"RENAMED","object":{"metadata":{"name":"x"}}})", &error)
          .has_value());
  EXPECT_FALSE(
      DecodeServiceEvent(R"({"type":"ADDED","object":{"metadata":{}}})", &error)
          .has_value());
  EXPECT_FALSE(DecodeEndpointSliceList(R"({"items": 5})", &error).has_value());
}

}  // namespace
}  // namespace attache
