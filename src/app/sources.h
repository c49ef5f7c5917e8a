#pragma once

#include <memory>
#include <vector>

#include "catalog/catalog.h"
#include "config/config.h"
#include "sources/source.h"
#include "translate/translate.h"

namespace attache {

std::vector<std::string> SourceNames(const Config& config);
// One Source per configured source, not yet loaded.
std::vector<std::unique_ptr<Source>> MakeSources(const Config& config,
                                                 Catalog* catalog);
TranslateOptions TranslateOptionsOf(const Config& config);

}  // namespace attache
