#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "catalog/catalog.h"
#include "config/config.h"
#include "sources/source.h"

namespace attache {

// A YAML host file, or a folder of them (every *.yaml, *.yml and *.json in
// it, merged in name order), reloaded whenever one changes. The folder is
// watched with inotify, not the file, so that editors and tools that replace
// a file by renaming (and Kubernetes ConfigMap symlink swaps) are seen. In a
// folder only the files that changed are re-read. A file that fails to parse
// is logged and ignored: its last good content keeps serving.
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
  struct HostFile {
    std::string text;     // last read, good or not
    ServiceMap services;  // last good
  };

  // Host files to read: the file itself, or the folder's host files.
  std::set<std::filesystem::path> ListFiles() const;
  // Re-reads `changed` (every file when empty) and reports the merged state
  // when anything was applied.
  void Reload(const std::set<std::filesystem::path>& changed = {});
  // Reads one file; true when its content changed and was applied.
  bool ReadOne(const std::filesystem::path& file);
  void Publish();
  void Watch();
  // Collects the files named by pending inotify events; sets *rescan when an
  // event names no single host file (a ConfigMap swap, a queue overflow).
  void Drain(std::set<std::filesystem::path>* changed, bool* rescan);

  const std::string name_;
  const std::filesystem::path path_;
  bool folder_ = false;
  Catalog* const catalog_;
  std::mutex reload_mu_;  // the watcher and Start may both reload
  // Per file: the text last read (good or not) and its last good services,
  // keyed by path string as Catalog::Merge wants them.
  std::map<std::string, std::string> texts_;
  std::map<std::string, ServiceMap> services_;
  int inotify_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
  std::atomic<uint64_t> reloads_{0};
  std::atomic<uint64_t> rejected_{0};
};

}  // namespace attache
