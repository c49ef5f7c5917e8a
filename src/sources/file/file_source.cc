#include "sources/file/file_source.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "config/config_error.h"
#include "sources/file/host_file.h"

namespace attache {
namespace {
constexpr int kSettleMillis = 20;

// strerror is not thread-safe; the error category is.
std::string ErrnoMessage() {
  return std::error_code(errno, std::generic_category()).message();
}
}  // namespace

FileSource::FileSource(std::string name, FileSourceConfig config,
                       Catalog* catalog)
    : name_(std::move(name)),
      path_(std::move(config.path)),
      catalog_(catalog) {}

FileSource::~FileSource() { Stop(); }

void FileSource::Check() {
  ParseHostFile(path_.string(), ReadFileOrThrow(path_), name_);
}

void FileSource::LoadInitial() {
  const std::string text = ReadFileOrThrow(path_);
  ServiceMap services = ParseHostFile(path_.string(), text, name_);
  size_t endpoints = 0;
  for (const auto& [name, service] : services) {
    endpoints += service.endpoints.size();
  }
  spdlog::info("source {}: loaded {} ({} services, {} endpoints)", name_,
               path_.string(), services.size(), endpoints);
  last_text_ = text;
  catalog_->Update(name_, std::move(services));
}

bool FileSource::Reload() {
  std::lock_guard lock(reload_mu_);
  std::string text;
  try {
    text = ReadFileOrThrow(path_);
    if (text == last_text_) {
      return true;
    }
    ServiceMap services = ParseHostFile(path_.string(), text, name_);
    last_text_ = std::move(text);
    ++reloads_;
    spdlog::info("source {}: reloaded {} ({} services)", name_, path_.string(),
                 services.size());
    catalog_->Update(name_, std::move(services));
    return true;
  } catch (const ConfigError& error) {
    // Remember the rejected text so the same bad content is reported once.
    if (!text.empty()) {
      last_text_ = std::move(text);
    }
    ++rejected_;
    spdlog::error(
        "source {}: rejected the new content, still serving the "
        "last good one: {}",
        name_, error.what());
    return false;
  }
}

void FileSource::Start() {
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (inotify_fd_ < 0 || stop_fd_ < 0) {
    throw std::runtime_error(std::string("inotify: ") + ErrnoMessage());
  }
  const std::string folder = path_.parent_path().empty()
                                 ? std::string(".")
                                 : path_.parent_path().string();
  if (inotify_add_watch(inotify_fd_, folder.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE |
                            IN_MODIFY | IN_ATTRIB) < 0) {
    throw std::runtime_error("cannot watch " + folder + ": " + ErrnoMessage());
  }
  thread_ = std::thread([this] { Watch(); });
  // An edit between LoadInitial and the watch would otherwise go unseen.
  Reload();
}

void FileSource::Watch() {
  std::array<pollfd, 2> fds = {pollfd{inotify_fd_, POLLIN, 0},
                               pollfd{stop_fd_, POLLIN, 0}};
  alignas(inotify_event) std::array<char, 16384> buffer{};
  for (;;) {
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      spdlog::error("source {}: poll failed: {}", name_, ErrnoMessage());
      return;
    }
    if (fds[1].revents != 0) {
      return;
    }
    // Drain the events; any change in the folder is a reason to re-read,
    // and an unchanged file costs one read and a comparison.
    // Writers often take several calls; wait until the folder is quiet for
    // a moment so a half-written file is not read (and rejected) needlessly.
    do {
      while (read(inotify_fd_, buffer.data(), buffer.size()) > 0) {
      }
    } while (poll(fds.data(), 1, kSettleMillis) > 0 && fds[0].revents != 0);
    Reload();
  }
}

void FileSource::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof one) < 0) {
      spdlog::warn("source {}: cannot signal the watcher", name_);
    }
    thread_.join();
  }
  if (inotify_fd_ >= 0) {
    close(inotify_fd_);
    inotify_fd_ = -1;
  }
  if (stop_fd_ >= 0) {
    close(stop_fd_);
    stop_fd_ = -1;
  }
}

}  // namespace attache
