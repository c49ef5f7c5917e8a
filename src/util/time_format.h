#pragma once

#include <chrono>
#include <string>

namespace attache {

// "2026-11-25T19:58:39Z"
std::string FormatUtc(std::chrono::system_clock::time_point when);

}  // namespace attache
