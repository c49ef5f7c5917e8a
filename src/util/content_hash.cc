#include "util/content_hash.h"

#include <xxhash.h>

#include <cstdio>

namespace attache {

void ContentHasher::StateDeleter::operator()(XXH3_state_s* state) const {
  XXH3_freeState(state);
}

uint64_t ContentHash(std::string_view bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

std::string HashHex(uint64_t hash) {
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx",
                static_cast<unsigned long long>(hash));
  return std::string(buffer, 16);
}

ContentHasher::ContentHasher() : state_(XXH3_createState()) {
  XXH3_64bits_reset(state_.get());
}

void ContentHasher::Add(std::string_view piece) {
  const uint64_t size = piece.size();
  XXH3_64bits_update(state_.get(), &size, sizeof size);
  XXH3_64bits_update(state_.get(), piece.data(), piece.size());
}

uint64_t ContentHasher::Finish() { return XXH3_64bits_digest(state_.get()); }

}  // namespace attache
