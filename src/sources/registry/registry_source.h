#pragma once

#include <string>

#include "catalog/catalog.h"
#include "config/config.h"
#include "sources/source.h"

namespace attache {

// Placeholder until the registry source lands.
class RegistrySource final : public Source {
 public:
  RegistrySource(std::string name, RegistrySourceConfig config,
                 Catalog* catalog)
      : name_(std::move(name)), config_(std::move(config)), catalog_(catalog) {}
  const std::string& name() const override { return name_; }
  void LoadInitial() override {
    catalog_->ReportError(name_, "registry source not implemented yet");
  }
  void Start() override {}
  void Stop() override {}

 private:
  std::string name_;
  RegistrySourceConfig config_;
  Catalog* catalog_;
};

}  // namespace attache
