#pragma once

#include <string>

#include "catalog/catalog.h"
#include "config/config.h"
#include "sources/source.h"

namespace attache {

// Placeholder until the kubernetes source lands.
class KubernetesSource final : public Source {
 public:
  KubernetesSource(std::string name, KubernetesSourceConfig config,
                   Catalog* catalog)
      : name_(std::move(name)), config_(std::move(config)), catalog_(catalog) {}
  const std::string& name() const override { return name_; }
  void LoadInitial() override {
    catalog_->ReportError(name_, "kubernetes source not implemented yet");
  }
  void Start() override {}
  void Stop() override {}

 private:
  std::string name_;
  KubernetesSourceConfig config_;
  Catalog* catalog_;
};

}  // namespace attache
