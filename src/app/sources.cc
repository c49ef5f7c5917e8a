#include "app/sources.h"

#include "sources/file/file_source.h"
#include "sources/kubernetes/kubernetes_source.h"
#include "sources/registry/registry_source.h"

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
    if (const auto* file = std::get_if<FileSourceConfig>(&source.spec)) {
      sources.push_back(
          std::make_unique<FileSource>(source.name, *file, catalog));
    } else if (const auto* kube =
                   std::get_if<KubernetesSourceConfig>(&source.spec)) {
      sources.push_back(
          std::make_unique<KubernetesSource>(source.name, *kube, catalog));
    } else if (const auto* registry =
                   std::get_if<RegistrySourceConfig>(&source.spec)) {
      sources.push_back(
          std::make_unique<RegistrySource>(source.name, *registry, catalog));
    }
  }
  return sources;
}

TranslateOptions TranslateOptionsOf(const Config& config) {
  return TranslateOptions{config.defaults, config.cluster_name_template};
}

}  // namespace attache
