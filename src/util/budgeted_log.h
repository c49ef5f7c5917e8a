#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <string_view>
#include <utility>

#include "util/log_budget.h"

namespace attache {

// Logs at `level` within `budget`, at debug level beyond it; the first line
// of a later window is preceded by how many lines were held back (`what`
// names them, and where they are counted).
template <typename... Args>
void LogBudgeted(LogBudget& budget, spdlog::level::level_enum level,
                 std::string_view what, spdlog::format_string_t<Args...> format,
                 Args&&... args) {
  const LogBudget::Decision decision = budget.Take();
  if (decision.suppressed > 0) {
    spdlog::log(
        level, "{} more {} in the last {} s were logged at debug level only",
        decision.suppressed, what,
        std::chrono::duration_cast<std::chrono::seconds>(budget.window())
            .count());
  }
  spdlog::log(decision.log ? level : spdlog::level::debug, format,
              std::forward<Args>(args)...);
}

}  // namespace attache
