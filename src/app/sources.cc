#include "app/sources.h"

#include "sources/file/file_source.h"

namespace attache {

std::vector<std::string> SourceNames(const Config& config) {
  std::vector<std::string> names;
  for (const SourceConfig& source : config.sources) {
    names.push_back(source.name);
  }
  return names;
}

std::vector<std::unique_ptr<Source>> MakeSources(const Config& config,
                                                 Catalog* catalog) {
  std::vector<std::unique_ptr<Source>> sources;
  for (const SourceConfig& source : config.sources) {
    // Config validation admits only known types.
    sources.push_back(std::make_unique<FileSource>(source, catalog));
  }
  return sources;
}

TranslateOptions TranslateOptionsOf(const Config& config) {
  return TranslateOptions{config.defaults, config.cluster_name_template};
}

}  // namespace attache
