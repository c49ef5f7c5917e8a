#include "util/duration.h"

#include <charconv>

namespace attache {

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [rest, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || rest == text.data() || value < 0) {
    return std::nullopt;
  }
  const std::string_view unit(rest, static_cast<size_t>(end - rest));
  int64_t factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = int64_t{60} * 1000;
  } else if (unit == "h") {
    factor = int64_t{3600} * 1000;
  } else {
    return std::nullopt;
  }
  constexpr int64_t kMaxMillis = int64_t{1} << 50;
  if (value > kMaxMillis / factor) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(value * factor);
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms % 1000 == 0) {
    return std::to_string(ms / 1000) + "s";
  }
  return std::to_string(ms) + "ms";
}

}  // namespace attache
