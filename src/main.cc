// attache: a multi-cluster Envoy control plane. This file is only the CLI.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "app/dump.h"
#include "app/logging.h"
#include "app/serve.h"
#include "app/sources.h"
#include "config/config.h"
#include "config/config_error.h"

namespace {

using attache::ConfigError;

int Validate(const std::string& path) {
  const attache::Config config = attache::LoadConfig(path);
  attache::Catalog catalog(attache::SourceNames(config));
  for (auto& source : attache::MakeSources(config, &catalog)) {
    source->Check();
  }
  std::cout << path << ": ok (" << config.sources.size() << " sources)\n";
  return 0;
}

struct DumpArgs {
  std::string config;
  std::string node_id;
  std::string node_cluster;
  std::string region;
  std::string zone;
  std::string user_agent = "envoy";
  std::vector<std::string> client_features;
  std::string format = "json";
};

int Dump(const DumpArgs& args) {
  const attache::Config config = attache::LoadConfig(args.config);
  attache::Catalog catalog(attache::SourceNames(config));
  for (auto& source : attache::MakeSources(config, &catalog)) {
    source->LoadInitial();
  }
  envoy::config::core::v3::Node node;
  node.set_id(args.node_id);
  node.set_cluster(args.node_cluster);
  node.set_user_agent_name(args.user_agent);
  if (!args.region.empty()) node.mutable_locality()->set_region(args.region);
  if (!args.zone.empty()) node.mutable_locality()->set_zone(args.zone);
  for (const auto& feature : args.client_features) {
    node.add_client_features(feature);
  }
  const nlohmann::json dump = attache::DumpForNode(
      *attache::BuildSnapshotSet(catalog.Current(),
                                 attache::TranslateOptionsOf(config), nullptr),
      node);
  if (args.format == "yaml") {
    std::cout << attache::JsonToYaml(dump);
  } else {
    std::cout << dump.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "attache: a multi-cluster Envoy control plane (xDS v3 for Envoy and "
      "proxyless gRPC)"};
  app.require_subcommand(1);
  app.fallthrough();  // --log-level may follow the subcommand too
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text (one line per event) or json (one object per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  std::string config_path;
  std::string ports_file;
  auto* serve = app.add_subcommand("serve", "Serve xDS and the admin API");
  serve->add_option("-c,--config", config_path, "Config file (YAML)")
      ->required();
  serve->add_option(
      "--write-ports", ports_file,
      "Write the bound ports as JSON to this file once listening");

  auto* validate =
      app.add_subcommand("validate", "Check a config and its host files");
  validate->add_option("-c,--config", config_path, "Config file (YAML)")
      ->required();

  DumpArgs dump_args;
  auto* dump = app.add_subcommand(
      "dump", "Print exactly the resources a node would receive");
  dump->add_option("-c,--config", dump_args.config, "Config file (YAML)")
      ->required();
  dump->add_option("--node-id", dump_args.node_id, "node.id")->required();
  dump->add_option("--node-cluster", dump_args.node_cluster, "node.cluster");
  dump->add_option("--region", dump_args.region, "node.locality.region");
  dump->add_option("--zone", dump_args.zone, "node.locality.zone");
  dump->add_option("--user-agent", dump_args.user_agent,
                   "node.user_agent_name (\"envoy\", or e.g. \"gRPC C-core\" "
                   "for a proxyless gRPC client)")
      ->capture_default_str();
  dump->add_option("--client-feature", dump_args.client_features,
                   "node.client_features (repeatable)");
  dump->add_option("--format", dump_args.format, "json or yaml")
      ->check(CLI::IsMember({"json", "yaml"}))
      ->capture_default_str();

  app.add_subcommand("version", "Print the version");

  CLI11_PARSE(app, argc, argv);
  // Logs go to stderr so that `dump` output on stdout stays clean.
  attache::SetUpLogging(log_level, log_format);

  try {
    if (app.got_subcommand("version")) {
      std::cout << "attache " << ATTACHE_VERSION << "\n";
      return 0;
    }
    if (*validate) {
      return Validate(config_path);
    }
    if (*dump) {
      return Dump(dump_args);
    }
    attache::ServeOptions options;
    options.ports_file = ports_file;
    return attache::Serve(attache::LoadConfig(config_path), options);
  } catch (const ConfigError& error) {
    std::cerr << "attache: " << error.what() << "\n";
    return 1;
  } catch (const std::exception& error) {
    std::cerr << "attache: " << error.what() << "\n";
    return 2;
  }
}
