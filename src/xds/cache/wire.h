#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace attache {

// Minimal protobuf wire encoding, for assembling responses around bytes that
// were serialized once.
inline void AppendVarint(std::string* out, uint64_t value) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// A length-delimited field (wire type 2): strings, bytes, messages.
inline void AppendBytesField(std::string* out, uint32_t field,
                             std::string_view bytes) {
  AppendVarint(out, (uint64_t{field} << 3) | 2);
  AppendVarint(out, bytes.size());
  out->append(bytes);
}

}  // namespace attache
