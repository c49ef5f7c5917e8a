#include "config/yaml_fields.h"

#include <simdjson.h>

#include <charconv>

#include "util/duration.h"

namespace attache {
namespace {

const char* KindName(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "empty";
    case YAML::NodeType::Undefined:
      break;
  }
  return "undefined";
}

// Present and not null.
std::optional<YAML::Node> Child(const YAML::Node& map, std::string_view key) {
  YAML::Node child = map[std::string(key)];
  if (!child.IsDefined() || child.IsNull()) {
    return std::nullopt;
  }
  return child;
}

}  // namespace

YamlPath YamlPath::Key(std::string_view key) const {
  return YamlPath(
      file_, path_.empty() ? std::string(key) : path_ + "." + std::string(key));
}

YamlPath YamlPath::Index(size_t index) const {
  return YamlPath(file_, path_ + "[" + std::to_string(index) + "]");
}

void YamlPath::Fail(std::string_view problem) const {
  std::string message = file_ + ": ";
  if (!path_.empty()) {
    message += path_ + ": ";
  }
  message += problem;
  throw ConfigError(message);
}

YAML::Node LoadYaml(const std::string& file, const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& error) {
    throw ConfigError(file + ":" + std::to_string(error.mark.line + 1) + ":" +
                      std::to_string(error.mark.column + 1) +
                      ": YAML syntax error: " + error.msg);
  }
}

void ExpectMapAnyKeys(const YAML::Node& node, const YamlPath& where) {
  if (!node.IsMap()) {
    where.Fail(std::string("must be a mapping, got ") + KindName(node));
  }
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) {
      where.Fail("keys must be strings");
    }
  }
}

void ExpectMap(const YAML::Node& node, const YamlPath& where,
               std::initializer_list<std::string_view> allowed,
               std::initializer_list<std::string_view> more) {
  ExpectMapAnyKeys(node, where);
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    bool known = false;
    for (auto list : {allowed, more}) {
      for (std::string_view name : list) {
        known = known || key == name;
      }
    }
    if (!known) {
      std::string expected;
      for (auto list : {allowed, more}) {
        for (std::string_view name : list) {
          expected += expected.empty() ? "" : ", ";
          expected += name;
        }
      }
      where.Key(key).Fail("unknown key (expected one of: " + expected + ")");
    }
  }
}

void ExpectUtf8(std::string_view text, const YamlPath& where) {
  if (!simdjson::validate_utf8(text.data(), text.size())) {
    where.Fail("must be UTF-8 text");
  }
}

void ExpectSequence(const YAML::Node& node, const YamlPath& where) {
  if (!node.IsSequence()) {
    where.Fail(std::string("must be a list, got ") + KindName(node));
  }
}

std::optional<std::string> OptionalString(const YAML::Node& map,
                                          std::string_view key,
                                          const YamlPath& where) {
  auto child = Child(map, key);
  if (!child) {
    return std::nullopt;
  }
  if (!child->IsScalar()) {
    where.Key(key).Fail(std::string("must be a string, got ") +
                        KindName(*child));
  }
  ExpectUtf8(child->Scalar(), where.Key(key));
  return child->Scalar();
}

std::string RequiredString(const YAML::Node& map, std::string_view key,
                           const YamlPath& where) {
  auto value = OptionalString(map, key, where);
  if (!value) {
    where.Key(key).Fail("required key is missing");
  }
  if (value->empty()) {
    where.Key(key).Fail("must not be empty");
  }
  return *value;
}

std::optional<uint64_t> OptionalUint(const YAML::Node& map,
                                     std::string_view key,
                                     const YamlPath& where, uint64_t min,
                                     uint64_t max) {
  auto text = OptionalString(map, key, where);
  if (!text) {
    return std::nullopt;
  }
  uint64_t value = 0;
  const char* end = text->data() + text->size();
  auto [rest, error] = std::from_chars(text->data(), end, value);
  if (error != std::errc() || rest != end || text->empty()) {
    where.Key(key).Fail("must be a whole number, got \"" + *text + "\"");
  }
  if (value < min || value > max) {
    where.Key(key).Fail("must be between " + std::to_string(min) + " and " +
                        std::to_string(max) + ", got " + *text);
  }
  return value;
}

std::optional<std::chrono::milliseconds> OptionalDuration(
    const YAML::Node& map, std::string_view key, const YamlPath& where,
    std::chrono::milliseconds min, std::chrono::milliseconds max) {
  auto text = OptionalString(map, key, where);
  if (!text) {
    return std::nullopt;
  }
  auto value = ParseDuration(*text);
  if (!value) {
    where.Key(key).Fail("must be a duration like 250ms, 1s, 5m or 1h, got \"" +
                        *text + "\"");
  }
  if (*value < min || *value > max) {
    where.Key(key).Fail("must be between " + FormatDuration(min) + " and " +
                        FormatDuration(max) + ", got " + *text);
  }
  return value;
}

}  // namespace attache
