#include "sources/file/file_source.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "config/config_error.h"
#include "sources/file/host_file.h"

namespace attache {
namespace {
// Writers often take several calls: a file is read once its folder has been
// quiet this long, so a half-written file is not read (and rejected)
// needlessly...
constexpr int kSettleMillis = 20;
// ...but a folder that is never quiet (many files edited all the time) is
// read at least this often.
constexpr auto kMaxSettle = std::chrono::milliseconds(50);

// strerror is not thread-safe; the error category is.
std::string ErrnoMessage() {
  return std::error_code(errno, std::generic_category()).message();
}

// Hidden names are editors' and writers' temporary files, and a ConfigMap
// volume's "..data" links.
bool IsHostFileName(const std::string& name) {
  if (name.empty() || name.front() == '.') {
    return false;
  }
  const auto extension = std::filesystem::path(name).extension();
  return extension == ".yaml" || extension == ".yml" || extension == ".json";
}

bool IsFolder(const std::filesystem::path& path) {
  std::error_code error;
  return std::filesystem::is_directory(path, error);
}

size_t CountEndpoints(const ServiceMap& services) {
  size_t endpoints = 0;
  for (const auto& [name, service] : services) {
    endpoints += service->endpoints.size();
  }
  return endpoints;
}
}  // namespace

FileSource::FileSource(std::string name, FileSourceConfig config,
                       Catalog* catalog)
    : name_(std::move(name)),
      path_(std::move(config.path)),
      folder_(IsFolder(path_)),
      catalog_(catalog) {}

FileSource::~FileSource() { Stop(); }

std::set<std::filesystem::path> FileSource::ListFiles() const {
  if (!folder_) {
    return {path_};
  }
  std::set<std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(path_, error)) {
    std::error_code type_error;
    if (IsHostFileName(entry.path().filename().string()) &&
        entry.is_regular_file(type_error)) {
      files.insert(entry.path());
    }
  }
  if (error) {
    throw ConfigError(path_.string() +
                      ": cannot list folder: " + error.message());
  }
  return files;
}

void FileSource::Check() {
  for (const auto& file : ListFiles()) {
    ParseHostFile(file.string(), ReadFileOrThrow(file), name_);
  }
}

void FileSource::LoadInitial() {
  std::lock_guard lock(reload_mu_);
  for (const auto& file : ListFiles()) {
    std::string text = ReadFileOrThrow(file);
    services_[file.string()] = ParseHostFile(file.string(), text, name_);
    texts_[file.string()] = std::move(text);
  }
  Publish();
}

bool FileSource::ReadOne(const std::filesystem::path& file) {
  const std::string key = file.string();
  std::error_code error;
  if (folder_ && !std::filesystem::exists(file, error)) {
    texts_.erase(key);
    return services_.erase(key) > 0;
  }
  std::string& last_text = texts_[key];
  std::string text;
  try {
    text = ReadFileOrThrow(file);
    if (text == last_text) {
      return false;
    }
    services_[key] = ParseHostFile(key, text, name_);
    last_text = std::move(text);
    return true;
  } catch (const ConfigError& failure) {
    // Remember the rejected text so the same bad content is reported once.
    if (!text.empty()) {
      last_text = std::move(text);
    }
    ++rejected_;
    spdlog::error(
        "source {}: rejected the new content, still serving the "
        "last good one: {}",
        name_, failure.what());
    return false;
  }
}

void FileSource::Reload(const std::set<std::filesystem::path>& changed) {
  std::lock_guard lock(reload_mu_);
  std::set<std::filesystem::path> targets = changed;
  if (targets.empty()) {
    try {
      targets = ListFiles();
    } catch (const ConfigError& failure) {
      spdlog::error("source {}: {}", name_, failure.what());
    }
    for (const auto& [file, text] : texts_) {
      targets.insert(file);
    }
  }
  bool applied = false;
  for (const auto& file : targets) {
    applied = ReadOne(file) || applied;
  }
  if (applied) {
    ++reloads_;
    Publish();
  }
}

void FileSource::Publish() {
  // Catalog::Merge gives a folder's files the precedence sources have: for
  // an address:port or a setting given twice, the first name wins.
  ServiceMap services = Catalog::Merge(services_);
  const bool first = reloads_ == 0;
  const std::string files =
      folder_ ? fmt::format(", {} files", texts_.size()) : "";
  spdlog::info("source {}: {} {} ({} services, {} endpoints{})", name_,
               first ? "loaded" : "reloaded", path_.string(), services.size(),
               CountEndpoints(services), files);
  catalog_->Update(name_, std::move(services));
}

void FileSource::Start() {
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (inotify_fd_ < 0 || stop_fd_ < 0) {
    throw std::runtime_error(std::string("inotify: ") + ErrnoMessage());
  }
  std::string folder = path_.string();
  if (!folder_) {
    folder = path_.parent_path().empty() ? std::string(".")
                                         : path_.parent_path().string();
  }
  // No IN_MODIFY: a file is read once its writer closes it, not half
  // written, and a file that stays open for appending (attache's own log next
  // to its host file) does not wake the watcher on every line.
  if (inotify_add_watch(inotify_fd_, folder.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                            IN_CREATE | IN_DELETE | IN_ATTRIB) < 0) {
    throw std::runtime_error("cannot watch " + folder + ": " + ErrnoMessage());
  }
  thread_ = std::thread([this] { Watch(); });
  // An edit between LoadInitial and the watch would otherwise go unseen.
  Reload();
}

void FileSource::Drain(std::set<std::filesystem::path>* changed, bool* rescan) {
  alignas(inotify_event) std::array<char, 16384> buffer{};
  for (;;) {
    const ssize_t length = read(inotify_fd_, buffer.data(), buffer.size());
    if (length <= 0) {
      return;
    }
    for (ssize_t at = 0; at < length;) {
      inotify_event event{};
      std::memcpy(&event, buffer.data() + at, sizeof event);
      const char* name = buffer.data() + at + sizeof event;
      at += static_cast<ssize_t>(sizeof event + event.len);
      if ((event.mask & IN_Q_OVERFLOW) != 0) {
        *rescan = true;
        continue;
      }
      const std::string file_name =
          event.len > 0 ? std::string(name, strnlen(name, event.len)) : "";
      if (IsHostFileName(file_name)) {
        changed->insert(path_ / file_name);
      } else if (file_name.starts_with("..")) {
        *rescan = true;  // a ConfigMap volume swapped its files at once
      }
    }
  }
}

void FileSource::Watch() {
  std::array<pollfd, 2> fds = {pollfd{inotify_fd_, POLLIN, 0},
                               pollfd{stop_fd_, POLLIN, 0}};
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
    std::set<std::filesystem::path> changed;
    // A single file is re-read on any event in its folder: an unchanged file
    // costs one read and a comparison.
    bool rescan = !folder_;
    const auto first = std::chrono::steady_clock::now();
    do {
      Drain(&changed, &rescan);
    } while (std::chrono::steady_clock::now() - first < kMaxSettle &&
             poll(fds.data(), 1, kSettleMillis) > 0 && fds[0].revents != 0);
    if (rescan) {
      Reload();
    } else if (!changed.empty()) {
      Reload(changed);
    }
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
