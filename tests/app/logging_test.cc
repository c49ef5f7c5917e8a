#include "app/logging.h"

#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

#include <nlohmann/json.hpp>
#include <string>

namespace attache {
namespace {

nlohmann::json Format(spdlog::level::level_enum level,
                      std::string_view payload) {
  spdlog::details::log_msg msg(
      spdlog::source_loc{}, "attache", level,
      spdlog::string_view_t(payload.data(), payload.size()));
  msg.time = std::chrono::system_clock::time_point(
      std::chrono::milliseconds(1'795'000'000'123));
  spdlog::memory_buf_t out;
  JsonLogFormatter().format(msg, out);
  const std::string line(out.data(), out.size());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per event";
  return nlohmann::json::parse(line);
}

TEST(JsonLogFormatter, OneEscapedObjectPerLine) {
  const auto json = Format(spdlog::level::warn,
                           "hosts.yaml: services.echo: \"port\"\nis bad");
  EXPECT_EQ(json["ts"], "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(json["level"], "warning");
  EXPECT_EQ(json["msg"], "hosts.yaml: services.echo: \"port\"\nis bad");
}

TEST(JsonLogFormatter, InvalidUtf8StillMakesValidJson) {
  const auto json = Format(spdlog::level::info, "bad \xff byte");
  EXPECT_EQ(json["level"], "info");
  EXPECT_NE(json["msg"].get<std::string>().find("bad "), std::string::npos);
}

}  // namespace
}  // namespace attache
