#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct XXH3_state_s;

namespace attache {

// Stable across processes and machines (XXH3-64), so replicas agree on
// versions.
uint64_t ContentHash(std::string_view bytes);

// 16 lowercase hex digits.
std::string HashHex(uint64_t hash);

// Incremental hash over a sequence of strings; each piece is length-prefixed so
// that ("ab","c") and ("a","bc") differ.
class ContentHasher {
 public:
  ContentHasher();

  void Add(std::string_view piece);
  uint64_t Finish();

 private:
  struct StateDeleter {
    void operator()(XXH3_state_s* state) const;
  };
  std::unique_ptr<XXH3_state_s, StateDeleter> state_;
};

}  // namespace attache
