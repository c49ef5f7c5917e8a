#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string_view>

namespace attache {

// Log lines as one JSON object each, for log pipelines:
// {"ts":"2026-11-26T05:08:28.286Z","level":"info","msg":"..."}. Messages are
// escaped, so a quote or newline from a broken input file stays inside "msg".
class JsonLogFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

// Logs to stderr (stdout stays for command output) at `level`, as text lines
// ("2026-11-26T05:08:28.286Z info message") or JSON lines.
void SetUpLogging(std::string_view level, std::string_view format);

}  // namespace attache
