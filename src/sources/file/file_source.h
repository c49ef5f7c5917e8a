#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "catalog/catalog.h"
#include "config/config.h"
#include "sources/source.h"

namespace attache {

// A YAML host file, reloaded whenever it changes. The folder is watched with
// inotify, not the file, so that editors and tools that replace the file by
// renaming (and Kubernetes ConfigMap symlink swaps) are seen. A file that
// fails to parse is logged and ignored: the last good content keeps serving.
class FileSource final : public Source {
 public:
  FileSource(std::string name, FileSourceConfig config, Catalog* catalog);
  ~FileSource() override;

  const std::string& name() const override { return name_; }
  void Check() override;
  void LoadInitial() override;
  void Start() override;
  void Stop() override;

  uint64_t reloads() const { return reloads_; }
  uint64_t rejected() const { return rejected_; }

 private:
  // Re-reads the file; true when it was applied (or unchanged).
  bool Reload();
  void Watch();

  const std::string name_;
  const std::filesystem::path path_;
  Catalog* const catalog_;
  std::mutex reload_mu_;  // the watcher and Start may both reload
  std::string last_text_;
  int inotify_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
  std::atomic<uint64_t> reloads_{0};
  std::atomic<uint64_t> rejected_{0};
};

}  // namespace attache
