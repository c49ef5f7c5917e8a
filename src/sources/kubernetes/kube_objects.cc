#include "sources/kubernetes/kube_objects.h"

#include <simdjson.h>

namespace attache {
namespace {

using simdjson::dom::element;
using simdjson::dom::object;

std::string StringAt(const element& parent, std::string_view key) {
  std::string_view value;
  if (parent[key].get(value) == simdjson::SUCCESS) {
    return std::string(value);
  }
  return "";
}

// The string at parent.<first>.<key>, or "" when any step is missing.
std::string StringIn(const element& parent, std::string_view first,
                     std::string_view key) {
  element child;
  if (parent[first].get(child) != simdjson::SUCCESS) {
    return "";
  }
  return StringAt(child, key);
}

std::optional<bool> BoolAt(const element& parent, std::string_view key) {
  bool value = false;
  if (parent[key].get(value) == simdjson::SUCCESS) {
    return value;
  }
  return std::nullopt;
}

std::optional<uint32_t> PortAt(const element& parent, std::string_view key) {
  int64_t value = 0;
  if (parent[key].get(value) == simdjson::SUCCESS && value > 0 &&
      value <= 65535) {
    return static_cast<uint32_t>(value);
  }
  return std::nullopt;
}

bool DecodeMeta(const element& item, std::string* ns, std::string* name,
                std::string* error) {
  element metadata;
  if (item["metadata"].get(metadata) != simdjson::SUCCESS) {
    *error = "object without metadata";
    return false;
  }
  *ns = StringAt(metadata, "namespace");
  *name = StringAt(metadata, "name");
  if (name->empty()) {
    *error = "object without metadata.name";
    return false;
  }
  return true;
}

bool Decode(const element& item, KubeService* service, std::string* error) {
  if (!DecodeMeta(item, &service->ns, &service->name, error)) {
    return false;
  }
  object annotations;
  if (item["metadata"]["annotations"].get(annotations) == simdjson::SUCCESS) {
    for (auto [key, value] : annotations) {
      std::string_view text;
      if (value.get(text) == simdjson::SUCCESS) {
        service->annotations[std::string(key)] = std::string(text);
      }
    }
  }
  element spec;
  if (item["spec"].get(spec) != simdjson::SUCCESS) {
    return true;  // a Service without spec serves nothing
  }
  service->type = StringAt(spec, "type");
  simdjson::dom::array ports;
  if (spec["ports"].get(ports) == simdjson::SUCCESS) {
    for (element port : ports) {
      KubeServicePort decoded;
      decoded.name = StringAt(port, "name");
      decoded.port = PortAt(port, "port").value_or(0);
      if (auto protocol = StringAt(port, "protocol"); !protocol.empty()) {
        decoded.protocol = protocol;
      }
      service->ports.push_back(std::move(decoded));
    }
  }
  return true;
}

bool Decode(const element& item, KubeEndpointSlice* slice, std::string* error) {
  if (!DecodeMeta(item, &slice->ns, &slice->name, error)) {
    return false;
  }
  element metadata;
  if (item["metadata"].get(metadata) == simdjson::SUCCESS) {
    slice->service_name =
        StringIn(metadata, "labels", "kubernetes.io/service-name");
  }
  slice->address_type = StringAt(item, "addressType");
  simdjson::dom::array ports;
  if (item["ports"].get(ports) == simdjson::SUCCESS) {
    for (element port : ports) {
      KubeSlicePort decoded;
      decoded.name = StringAt(port, "name");
      decoded.port = PortAt(port, "port");
      if (auto protocol = StringAt(port, "protocol"); !protocol.empty()) {
        decoded.protocol = protocol;
      }
      slice->ports.push_back(std::move(decoded));
    }
  }
  simdjson::dom::array endpoints;
  if (item["endpoints"].get(endpoints) == simdjson::SUCCESS) {
    for (element endpoint : endpoints) {
      KubeSliceEndpoint decoded;
      simdjson::dom::array addresses;
      if (endpoint["addresses"].get(addresses) == simdjson::SUCCESS) {
        for (element address : addresses) {
          std::string_view text;
          if (address.get(text) == simdjson::SUCCESS) {
            decoded.addresses.emplace_back(text);
          }
        }
      }
      element conditions;
      if (endpoint["conditions"].get(conditions) == simdjson::SUCCESS) {
        decoded.ready = BoolAt(conditions, "ready");
        decoded.serving = BoolAt(conditions, "serving");
        decoded.terminating = BoolAt(conditions, "terminating");
      }
      decoded.zone = StringAt(endpoint, "zone");
      decoded.node_name = StringAt(endpoint, "nodeName");
      slice->endpoints.push_back(std::move(decoded));
    }
  }
  return true;
}

// Parses `text` into `doc` (which lives as long as `parser`).
bool ParseJson(simdjson::dom::parser& parser, std::string_view text,
               std::string_view what, element* doc, std::string* error) {
  const simdjson::padded_string padded(text);
  if (auto code = parser.parse(padded).get(*doc); code != simdjson::SUCCESS) {
    *error =
        std::string(what) + " is not JSON: " + simdjson::error_message(code);
    return false;
  }
  return true;
}

template <typename Object>
std::optional<KubeList<Object>> DecodeList(std::string_view json,
                                           std::string* error) {
  simdjson::dom::parser parser;
  element doc;
  if (!ParseJson(parser, json, "list", &doc, error)) {
    return std::nullopt;
  }
  KubeList<Object> list;
  list.resource_version = StringIn(doc, "metadata", "resourceVersion");
  list.continue_token = StringIn(doc, "metadata", "continue");
  simdjson::dom::array items;
  if (doc["items"].get(items) != simdjson::SUCCESS) {
    element items_value;
    if (doc["items"].get(items_value) == simdjson::SUCCESS &&
        items_value.is_null()) {
      return list;
    }
    *error = "list without items";
    return std::nullopt;
  }
  for (element item : items) {
    Object object;
    if (!Decode(item, &object, error)) {
      return std::nullopt;
    }
    list.items.push_back(std::move(object));
  }
  return list;
}

template <typename Object>
std::optional<KubeWatchEvent<Object>> DecodeEvent(std::string_view line,
                                                  std::string* error) {
  simdjson::dom::parser parser;
  element doc;
  if (!ParseJson(parser, line, "watch event", &doc, error)) {
    return std::nullopt;
  }
  KubeWatchEvent<Object> event;
  const std::string type = StringAt(doc, "type");
  element body;
  if (doc["object"].get(body) != simdjson::SUCCESS) {
    *error = "watch event without object";
    return std::nullopt;
  }
  using Type = typename KubeWatchEvent<Object>::Type;
  if (type == "ERROR") {
    event.type = Type::kError;
    int64_t code = 0;
    if (body["code"].get(code) == simdjson::SUCCESS) {
      event.error_code = static_cast<int32_t>(code);
    }
    event.error_message = StringAt(body, "message");
    return event;
  }
  event.resource_version = StringIn(body, "metadata", "resourceVersion");
  if (type == "BOOKMARK") {
    event.type = Type::kBookmark;
    return event;
  }
  if (type == "ADDED") {
    event.type = Type::kAdded;
  } else if (type == "MODIFIED") {
    event.type = Type::kModified;
  } else if (type == "DELETED") {
    event.type = Type::kDeleted;
  } else {
    *error = "unknown watch event type \"" + type + "\"";
    return std::nullopt;
  }
  Object object;
  if (!Decode(body, &object, error)) {
    return std::nullopt;
  }
  event.object = std::move(object);
  return event;
}

}  // namespace

std::optional<KubeList<KubeService>> DecodeServiceList(std::string_view json,
                                                       std::string* error) {
  return DecodeList<KubeService>(json, error);
}

std::optional<KubeList<KubeEndpointSlice>> DecodeEndpointSliceList(
    std::string_view json, std::string* error) {
  return DecodeList<KubeEndpointSlice>(json, error);
}

std::optional<KubeWatchEvent<KubeService>> DecodeServiceEvent(
    std::string_view line, std::string* error) {
  return DecodeEvent<KubeService>(line, error);
}

std::optional<KubeWatchEvent<KubeEndpointSlice>> DecodeEndpointSliceEvent(
    std::string_view line, std::string* error) {
  return DecodeEvent<KubeEndpointSlice>(line, error);
}

}  // namespace attache
