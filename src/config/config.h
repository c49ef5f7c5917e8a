#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "catalog/model.h"

namespace attache {

struct ListenAddress {
  std::string host;  // an IP literal, without brackets
  uint16_t port = 0;

  // "host:port" as gRPC wants it ("[::1]:80" for IPv6).
  std::string ToString() const;
};

struct ServiceDefaults {
  std::chrono::milliseconds connect_timeout{1000};
  LbPolicy lb_policy = LbPolicy::kRoundRobin;
};

struct SourceConfig {
  std::string name;
  std::string type;  // "file"
  std::filesystem::path path;
};

struct Config {
  std::filesystem::path file;
  ListenAddress xds_listen;
  ListenAddress admin_listen{"127.0.0.1", 19000};
  std::chrono::milliseconds debounce{50};
  std::chrono::milliseconds max_delay{500};
  ServiceDefaults defaults;
  std::string cluster_name_template = "{service}";
  std::vector<SourceConfig> sources;
};

// Reads and validates a config file; throws ConfigError.
Config LoadConfig(const std::filesystem::path& file);
// Validates config text as if it were read from `file`; throws ConfigError.
Config ParseConfig(const std::filesystem::path& file, const std::string& text);

// Reads a whole file; throws ConfigError naming it when it cannot.
std::string ReadFileOrThrow(const std::filesystem::path& file);

}  // namespace attache
