#include "sources/kubernetes/credentials.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "config/config.h"

extern char** environ;  // NOLINT: POSIX

namespace attache {
namespace {

std::string Trim(std::string text) {
  while (!text.empty() &&
         (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// RFC 3339 "2026-11-25T20:00:00Z" (fractions and offsets other than Z are
// not used by plugins in practice; they fall back to "no expiry").
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(
    const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  // system_clock counts nanoseconds and ends in 2262; later is "never".
  if (end == nullptr || tm.tm_year + 1900 >= 2262) {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

BearerTokenSource::BearerTokenSource(const ClusterAccess& access)
    : fixed_token_(access.token),
      token_file_(access.token_file),
      exec_(access.exec) {}

void BearerTokenSource::Invalidate() {
  std::lock_guard lock(mu_);
  valid_ = false;
}

std::string BearerTokenSource::Token() {
  std::lock_guard lock(mu_);
  if (!token_file_.empty()) {
    std::error_code error;
    const auto mtime = std::filesystem::last_write_time(token_file_, error);
    if (!valid_ || error || mtime != file_mtime_) {
      cached_ = Trim(ReadFileOrThrow(token_file_));
      file_mtime_ = mtime;
      valid_ = true;
    }
    return cached_;
  }
  if (exec_) {
    // Refresh a little before expiry so a request never carries a dead token.
    const auto now = std::chrono::system_clock::now();
    if (!valid_ || (expires_ && now + std::chrono::seconds(10) >= *expires_)) {
      cached_ = RunExecPlugin();
      valid_ = true;
    }
    return cached_;
  }
  return fixed_token_;
}

std::string BearerTokenSource::RunExecPlugin() {
  std::array<int, 2> pipe_fds{};
  if (pipe(pipe_fds.data()) != 0) {
    throw std::runtime_error("exec credential plugin: cannot create a pipe");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    env_strings.emplace_back(*e);
  }
  for (const auto& [name, value] : exec_->env) {
    env_strings.push_back(name + "=" + value);
  }
  env_strings.push_back("KUBERNETES_EXEC_INFO=" +
                        nlohmann::json{{"apiVersion", exec_->api_version},
                                       {"kind", "ExecCredential"},
                                       {"spec", {{"interactive", false}}}}
                            .dump());
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_strings = {exec_->command};
  arg_strings.insert(arg_strings.end(), exec_->args.begin(), exec_->args.end());
  std::vector<char*> argv;
  argv.reserve(arg_strings.size() + 1);
  for (auto& arg : arg_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, exec_->command.c_str(), &actions,
                                   nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    throw std::runtime_error("exec credential plugin \"" + exec_->command +
                             "\" cannot be started");
  }
  std::string output;
  std::array<char, 4096> buffer{};
  ssize_t n = 0;
  while ((n = read(pipe_fds[0], buffer.data(), buffer.size())) > 0) {
    output.append(buffer.data(), static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("exec credential plugin \"" + exec_->command +
                             "\" failed");
  }
  const auto doc = nlohmann::json::parse(output, nullptr, false);
  if (doc.is_discarded() || !doc.contains("status") ||
      !doc["status"].contains("token") || !doc["status"]["token"].is_string()) {
    throw std::runtime_error("exec credential plugin \"" + exec_->command +
                             "\" printed no ExecCredential with a token");
  }
  expires_.reset();
  if (doc["status"].contains("expirationTimestamp") &&
      doc["status"]["expirationTimestamp"].is_string()) {
    expires_ =
        ParseRfc3339(doc["status"]["expirationTimestamp"].get<std::string>());
  }
  return doc["status"]["token"].get<std::string>();
}

}  // namespace attache
