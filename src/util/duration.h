#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace attache {

// Parses "250ms", "1s", "5m", "1h" into milliseconds; nullopt if malformed.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text);

std::string FormatDuration(std::chrono::milliseconds duration);

}  // namespace attache
