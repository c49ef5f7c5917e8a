#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "config/config_error.h"

namespace attache {

// Where a YAML node sits: the file and the key path, for error messages.
class YamlPath {
 public:
  YamlPath(std::string file, std::string path = "")
      : file_(std::move(file)), path_(std::move(path)) {}

  YamlPath Key(std::string_view key) const;
  YamlPath Index(size_t index) const;
  [[noreturn]] void Fail(std::string_view problem) const;

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }

 private:
  std::string file_;
  std::string path_;
};

// Parses a whole YAML document; syntax errors become ConfigError with the
// file, line and column.
YAML::Node LoadYaml(const std::string& file, const std::string& text);

// Requires `node` to be a mapping whose keys are all in `allowed` (or in
// `more`).
void ExpectMap(const YAML::Node& node, const YamlPath& where,
               std::initializer_list<std::string_view> allowed,
               std::initializer_list<std::string_view> more = {});
// Requires a mapping with arbitrary (string) keys.
void ExpectMapAnyKeys(const YAML::Node& node, const YamlPath& where);
void ExpectSequence(const YAML::Node& node, const YamlPath& where);
// Strings end up in protobuf string fields, which must be UTF-8: one stray
// byte (yaml-cpp passes any through) would make whole xDS responses
// undecodable for every client that gets them.
void ExpectUtf8(std::string_view text, const YamlPath& where);

// Child accessors: nullopt when the key is absent (or null); ConfigError when
// present with the wrong type, out of range or not UTF-8.
std::optional<std::string> OptionalString(const YAML::Node& map,
                                          std::string_view key,
                                          const YamlPath& where);
std::string RequiredString(const YAML::Node& map, std::string_view key,
                           const YamlPath& where);
std::optional<uint64_t> OptionalUint(const YAML::Node& map,
                                     std::string_view key,
                                     const YamlPath& where, uint64_t min,
                                     uint64_t max);
std::optional<std::chrono::milliseconds> OptionalDuration(
    const YAML::Node& map, std::string_view key, const YamlPath& where,
    std::chrono::milliseconds min, std::chrono::milliseconds max);

}  // namespace attache
