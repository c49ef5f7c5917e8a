#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "catalog/model.h"

namespace attache {

struct ListenAddress {
  std::string host;  // an IP literal, without brackets
  uint16_t port = 0;

  // "host:port" as gRPC wants it ("[::1]:80" for IPv6).
  std::string ToString() const;
};

// TLS on the xDS port (xds.tls). No cert: plaintext.
struct XdsTlsConfig {
  std::filesystem::path cert;       // the server's certificate chain (PEM)
  std::filesystem::path key;        // its private key (PEM)
  std::filesystem::path client_ca;  // set: clients need a certificate it signed
  // Set: a client certificate must also carry one of these names (a URI or
  // DNS subject alternative name, or the subject's common name). An entry
  // ending in '*' matches every name that starts with what precedes it.
  std::vector<std::string> client_names;
  // How often the files are read again to pick up a new certificate.
  std::chrono::milliseconds refresh{5'000};

  bool enabled() const { return !cert.empty(); }
};

struct ServiceDefaults {
  std::chrono::milliseconds connect_timeout{1000};
  LbPolicy lb_policy = LbPolicy::kRoundRobin;
  FailoverPolicy failover = FailoverPolicy::kFlat;
  // weighted: the percentage of a client's traffic kept in its own zone.
  uint32_t local_percent = 80;
  // Every field set: the built-in values under what `defaults:` sets.
  ResilienceSettings resilience = BuiltInResilience();
};

// Resource TTLs, only for clients that announce support; zero: none.
struct TtlConfig {
  std::chrono::milliseconds ttl{0};
  std::chrono::milliseconds heartbeat{0};  // zero: ttl / 3
};

struct FileSourceConfig {
  std::filesystem::path path;
};

struct KubernetesSourceConfig {
  std::filesystem::path kubeconfig;  // empty: the in-cluster service account
  std::string context;               // empty: the kubeconfig's current context
  std::vector<std::string> namespaces;  // empty: all namespaces
  std::string label_selector;           // Services to serve; empty: all
  bool export_annotated_only = false;   // export: annotated
  Locality locality;  // for endpoints that carry no zone of their own
  bool not_ready_unhealthy = false;  // serve not-ready endpoints as UNHEALTHY
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds watch_timeout{300'000};  // server-side, per watch
};

struct RegistrySourceConfig {
  std::string url;  // base URL; GET <url>/v1/registration/<service>
  std::vector<std::string> services;
  std::chrono::milliseconds interval{5'000};
  std::chrono::milliseconds timeout{2'000};
  // An empty host list for a service that had hosts is applied only after it
  // was seen this many times in a row (a registry glitch must not empty it).
  uint32_t confirm_empty = 2;
  // An answer that removes more than this share (percent) of a service's
  // endpoints is held and applied only once answers have said so for
  // removal_window (zero: applied at once).
  uint32_t max_removal_percent = 30;
  std::chrono::milliseconds removal_window{30'000};
  // What the registry cannot say of its services (it carries hosts only):
  // `defaults:` of this source, under the top-level defaults.
  ServiceSettings service_settings;
};

struct SourceConfig {
  std::string name;
  std::string type;  // "file", "kubernetes" or "registry"
  // How long a source that cannot reach its origin keeps serving its last
  // good endpoints; zero means forever.
  std::chrono::milliseconds max_staleness{0};
  std::variant<FileSourceConfig, KubernetesSourceConfig, RegistrySourceConfig>
      spec;
};

// The admin HTTP listeners (admin:). Every figure bounds what one client
// (or a slowloris crowd) can hold; past a limit a connection is refused or
// closed, never queued.
struct AdminConfig {
  ListenAddress listen{"127.0.0.1", 19000};
  // /healthz and /readyz on a listener of their own, so that a flood of the
  // debug pages cannot fail a liveness probe. Unset: the admin host and the
  // admin port + 1 (a free port when the admin port is 0).
  std::optional<ListenAddress> health_listen;
  uint32_t max_connections = 256;          // per listener
  uint32_t max_connections_per_peer = 16;  // per listener and peer address
  // A connection that sends or accepts nothing for this long is closed.
  std::chrono::milliseconds idle_timeout{10'000};
  // The request line and headers of one request; more gets 431.
  uint32_t max_request_header_bytes = 16 * 1024;

  ListenAddress HealthListen() const;
};

struct Config {
  std::filesystem::path file;
  ListenAddress xds_listen;
  TtlConfig xds_ttl;
  XdsTlsConfig xds_tls;
  AdminConfig admin;
  std::chrono::milliseconds debounce{50};
  std::chrono::milliseconds max_delay{500};
  ServiceDefaults defaults;
  std::string cluster_name_template = "{service}";
  // Ready once every source synced or failed its first attempt; with
  // require_all_synced, only once every source synced.
  bool ready_requires_all_synced = false;
  std::vector<SourceConfig> sources;
};

// Reads and validates a config file, and reads and checks the files of
// xds.tls; throws ConfigError.
Config LoadConfig(const std::filesystem::path& file);
// Validates config text as if it were read from `file` (without reading any
// file it names); throws ConfigError.
Config ParseConfig(const std::filesystem::path& file, const std::string& text);

// Reads a whole file; throws ConfigError naming it when it cannot.
std::string ReadFileOrThrow(const std::filesystem::path& file);

}  // namespace attache
