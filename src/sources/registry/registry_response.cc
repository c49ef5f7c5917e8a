#include "sources/registry/registry_response.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "util/ip_address.h"

namespace attache {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr int64_t kMaxPort = 65535;
constexpr int64_t kMaxWeight = 1'000'000;

// Thrown inside DecodeHost: the host is skipped, the answer is kept.
class BadHost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Problems end up in logs and in /debug/sources; a hostile or broken
// registry must not be able to flood them or inject control characters.
std::string Shown(std::string_view text) {
  constexpr size_t kMaxShown = 64;
  std::string shown = "\"";
  for (const char c : text.substr(0, kMaxShown)) {
    shown += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (text.size() > kMaxShown) {
    shown += "...";
  }
  return shown + "\"";
}

std::string_view KindOf(element value) {
  switch (value.type()) {
    case element_type::ARRAY:
      return "a list";
    case element_type::OBJECT:
      return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      return "a number";
    case element_type::STRING:
      return "a string";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

// A present, non-null field. The registry writes null for "not known", so
// null reads as absent.
std::optional<element> Field(object parent, std::string_view key) {
  element value;
  if (parent.at_key(key).get(value) != simdjson::SUCCESS || value.is_null()) {
    return std::nullopt;
  }
  return value;
}

std::optional<std::string> StringField(object parent, std::string_view key) {
  const auto value = Field(parent, key);
  if (!value) {
    return std::nullopt;
  }
  std::string_view text;
  if (value->get_string().get(text) != simdjson::SUCCESS) {
    throw BadHost(std::string(key) + " is " + std::string(KindOf(*value)) +
                  ", not a string");
  }
  return std::string(text);
}

// An integer in [low, high]; with allow_text also a string of digits, as
// some registration clients send every tag as text.
int64_t IntegerIn(element value, std::string_view key, int64_t low,
                  int64_t high, bool allow_text) {
  const std::string range =
      " is out of range " + std::to_string(low) + ".." + std::to_string(high);
  int64_t number = 0;
  std::string_view text;
  if (value.is_int64()) {
    number = value.get_int64().value_unsafe();
  } else if (value.is_uint64()) {
    throw BadHost(std::string(key) + range);
  } else if (allow_text && value.get_string().get(text) == simdjson::SUCCESS) {
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, number);
    if (error == std::errc::result_out_of_range && stop == end) {
      throw BadHost(std::string(key) + " " + Shown(text) + range);
    }
    if (text.empty() || error != std::errc() || stop != end) {
      throw BadHost(std::string(key) + " " + Shown(text) +
                    " is not an integer");
    }
  } else {
    throw BadHost(std::string(key) + " is " + std::string(KindOf(value)) +
                  ", not an integer");
  }
  if (number < low || number > high) {
    throw BadHost(std::string(key) + " " + std::to_string(number) + range);
  }
  return number;
}

bool CanaryOf(element value) {
  bool flag = false;
  if (value.get_bool().get(flag) == simdjson::SUCCESS) {
    return flag;
  }
  std::string_view text;
  if (value.get_string().get(text) == simdjson::SUCCESS) {
    std::string lower(text);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
      return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    });
    // Python clients write str(True).
    if (lower == "true") {
      return true;
    }
    if (lower == "false") {
      return false;
    }
    throw BadHost("canary " + Shown(text) + " is neither true nor false");
  }
  throw BadHost("canary is " + std::string(KindOf(value)) + ", not a boolean");
}

void DecodeTags(object tags, Endpoint& endpoint) {
  endpoint.locality.zone = StringField(tags, "az").value_or("");
  endpoint.locality.region = StringField(tags, "region").value_or("");
  if (auto instance = StringField(tags, "instance_id")) {
    endpoint.metadata.emplace("instance_id", std::move(*instance));
  }
  if (const auto canary = Field(tags, "canary")) {
    endpoint.canary = CanaryOf(*canary);
  }
  if (const auto weight = Field(tags, "load_balancing_weight")) {
    endpoint.weight = static_cast<uint32_t>(
        IntegerIn(*weight, "load_balancing_weight", 1, kMaxWeight, true));
  }
}

// revision, service_repo_name and last_check_in are ignored on purpose:
// last_check_in changes on every heartbeat and would turn each poll into a
// push to every client.
Endpoint DecodeHost(element host, const std::string& origin) {
  object fields;
  if (host.get_object().get(fields) != simdjson::SUCCESS) {
    throw BadHost("is " + std::string(KindOf(host)) + ", not an object");
  }
  Endpoint endpoint;
  endpoint.origin = origin;
  auto address = StringField(fields, "ip_address");
  if (!address) {
    throw BadHost("ip_address is missing");
  }
  if (!IsIpLiteral(*address)) {
    throw BadHost("ip_address " + Shown(*address) + " is not an IP literal");
  }
  endpoint.address = std::move(*address);
  const auto port = Field(fields, "port");
  if (!port) {
    throw BadHost("port is missing");
  }
  endpoint.port =
      static_cast<uint32_t>(IntegerIn(*port, "port", 1, kMaxPort, false));
  if (const auto tags = Field(fields, "tags")) {
    object tag_fields;
    if (tags->get_object().get(tag_fields) != simdjson::SUCCESS) {
      throw BadHost("tags is " + std::string(KindOf(*tags)) +
                    ", not an object");
    }
    DecodeTags(tag_fields, endpoint);
  }
  return endpoint;
}

std::string HostPort(const Endpoint& endpoint) {
  const bool v6 = endpoint.address.find(':') != std::string::npos;
  return (v6 ? "[" + endpoint.address + "]" : endpoint.address) + ":" +
         std::to_string(endpoint.port);
}

}  // namespace

RegistryAnswer DecodeRegistryResponse(std::string_view text,
                                      const std::string& origin) {
  simdjson::dom::parser parser;
  element root;
  if (const auto error = parser.parse(text.data(), text.size()).get(root)) {
    throw RegistryResponseError(std::string("the answer is not valid JSON (") +
                                simdjson::error_message(error) + ")");
  }
  object top;
  if (root.get_object().get(top) != simdjson::SUCCESS) {
    throw RegistryResponseError("the answer is " + std::string(KindOf(root)) +
                                ", not an object");
  }
  const auto hosts = Field(top, "hosts");
  if (!hosts) {
    throw RegistryResponseError("the answer has no \"hosts\"");
  }
  simdjson::dom::array list;
  if (hosts->get_array().get(list) != simdjson::SUCCESS) {
    throw RegistryResponseError("\"hosts\" is " + std::string(KindOf(*hosts)) +
                                ", not a list");
  }

  RegistryAnswer answer;
  std::map<std::pair<std::string, uint32_t>, size_t> first_seen;
  size_t index = 0;
  for (const element host : list) {
    const std::string where = "hosts[" + std::to_string(index) + "]";
    try {
      Endpoint endpoint = DecodeHost(host, origin);
      const auto [seen, fresh] =
          first_seen.try_emplace({endpoint.address, endpoint.port}, index);
      if (fresh) {
        answer.endpoints.push_back(std::move(endpoint));
      } else {
        answer.problems.push_back(where + ": " + HostPort(endpoint) +
                                  " repeats hosts[" +
                                  std::to_string(seen->second) + "]");
      }
    } catch (const BadHost& problem) {
      answer.problems.push_back(where + ": " + problem.what());
    }
    ++index;
  }
  std::sort(answer.endpoints.begin(), answer.endpoints.end(),
            [](const Endpoint& a, const Endpoint& b) {
              return std::tie(a.address, a.port) < std::tie(b.address, b.port);
            });
  return answer;
}

}  // namespace attache
