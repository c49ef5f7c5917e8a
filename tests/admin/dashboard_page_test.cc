#include "admin/dashboard_page.h"

#include <gtest/gtest.h>

#include <string_view>

namespace attache {
namespace {

bool Has(std::string_view page, std::string_view text) {
  return page.find(text) != std::string_view::npos;
}

TEST(DashboardPage, IsOneHtmlPageThatPollsTheDebugEndpoints) {
  const std::string_view page = DashboardPage();
  EXPECT_TRUE(page.starts_with("<!doctype html>"));
  EXPECT_TRUE(Has(page, "<title>attache dashboard</title>"));
  EXPECT_TRUE(page.ends_with("</html>\n"));
  for (const char* endpoint :
       {"\"debug/catalog\"", "\"debug/sources\"", "\"debug/clients\""}) {
    EXPECT_TRUE(Has(page, endpoint)) << endpoint;
  }
}

TEST(DashboardPage, LoadsNothingFromElsewhere) {
  const std::string_view page = DashboardPage();
  for (const char* external : {"http://", "https://", "src=", "@import", "url(",
                               "<script src", "<iframe"}) {
    EXPECT_FALSE(Has(page, external)) << external;
  }
  // The one link is an empty icon, so that browsers ask for no favicon.
  const size_t href = page.find("href=");
  ASSERT_NE(href, std::string_view::npos);
  EXPECT_EQ(page.substr(href, 13), "href=\"data:,\"");
  EXPECT_EQ(page.find("href=", href + 1), std::string_view::npos);
}

TEST(DashboardPage, NeverParsesDataAsHtml) {
  const std::string_view page = DashboardPage();
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML",
                           "document.write", "eval("}) {
    EXPECT_FALSE(Has(page, sink)) << sink;
  }
}

}  // namespace
}  // namespace attache
