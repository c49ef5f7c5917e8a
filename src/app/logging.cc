#include "app/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

namespace attache {
namespace {

// "2026-11-26T05:08:28.286Z"
std::string UtcMillis(std::chrono::system_clock::time_point when) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      when.time_since_epoch())
                      .count();
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  const size_t length =
      std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  return std::string(text, length) + "." +
         std::to_string(1000 + ms % 1000).substr(1) + "Z";
}

}  // namespace

void JsonLogFormatter::format(const spdlog::details::log_msg& msg,
                              spdlog::memory_buf_t& dest) {
  const nlohmann::json line = {
      {"ts", UtcMillis(msg.time)},
      {"level",
       std::string_view(spdlog::level::to_string_view(msg.level).data(),
                        spdlog::level::to_string_view(msg.level).size())},
      {"msg", std::string_view(msg.payload.data(), msg.payload.size())},
  };
  // Invalid UTF-8 from an input file must not make the line unparsable.
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  dest.append(text.data(), text.data() + text.size());
  dest.push_back('\n');
}

std::unique_ptr<spdlog::formatter> JsonLogFormatter::clone() const {
  return std::make_unique<JsonLogFormatter>();
}

void SetUpLogging(std::string_view level, std::string_view format) {
  if (format == "json") {
    spdlog::set_default_logger(spdlog::stderr_logger_mt("attache"));
    spdlog::set_formatter(std::make_unique<JsonLogFormatter>());
  } else {
    spdlog::set_default_logger(spdlog::stderr_color_mt("attache"));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v",
                        spdlog::pattern_time_type::utc);
  }
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
}

}  // namespace attache
