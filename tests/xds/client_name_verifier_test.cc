#include "xds/server/client_name_verifier.h"

#include <gtest/gtest.h>

namespace attache {
namespace {

TEST(ClientNameVerifier, ExactNamesAndPrefixes) {
  const std::vector<std::string> allowed = {"envoy.mesh.internal",
                                            "spiffe://mesh/ns/payments/*"};
  const auto allowed_one = [&](std::vector<std::string_view> names) {
    return ClientNameVerifier::Allowed(allowed, names);
  };
  EXPECT_TRUE(allowed_one({"envoy.mesh.internal"}));
  EXPECT_TRUE(allowed_one({"other", "spiffe://mesh/ns/payments/sa/envoy"}));
  EXPECT_TRUE(allowed_one({"spiffe://mesh/ns/payments/"}));
  EXPECT_FALSE(allowed_one({}));
  EXPECT_FALSE(allowed_one({"envoy.mesh.internal.evil"}));
  EXPECT_FALSE(allowed_one({"envoy.mesh"}));
  EXPECT_FALSE(allowed_one({"spiffe://mesh/ns/payments"}));
  EXPECT_FALSE(allowed_one({"spiffe://mesh/ns/billing/sa/envoy"}));
  // A lone '*' admits every certificate the CA signed.
  EXPECT_TRUE(ClientNameVerifier::Allowed({"*"}, {"anything"}));
}

}  // namespace
}  // namespace attache
