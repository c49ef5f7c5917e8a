#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "catalog/model.h"

namespace attache {

// The merged truth at one moment; immutable once published.
struct CatalogSnapshot {
  uint64_t generation = 0;
  ServiceMap services;
};

// Merges what every source reports into one ServiceMap. Sources replace their
// whole contribution at once, so a source's last good state stays until it
// reports a new one.
class Catalog {
 public:
  using ChangeListener = std::function<void()>;

  explicit Catalog(const std::vector<std::string>& source_names);

  // Replaces everything `source` reported before. Calls the change listener
  // when the merged result changed.
  void Update(const std::string& source, ServiceMap services);

  std::shared_ptr<const CatalogSnapshot> Current() const;
  // True once every source has reported at least once.
  bool AllSynced() const;
  void SetChangeListener(ChangeListener listener);

  // Merges per-source maps (ordered by source name): a service's endpoints
  // are the union over sources; for an address:port reported twice the first
  // source wins, and so does the first source that sets a setting.
  static ServiceMap Merge(const std::map<std::string, ServiceMap>& by_source);

 private:
  mutable std::mutex mu_;
  std::map<std::string, ServiceMap> by_source_;
  std::map<std::string, bool> synced_;
  std::shared_ptr<const CatalogSnapshot> current_;
  ChangeListener listener_;
};

}  // namespace attache
