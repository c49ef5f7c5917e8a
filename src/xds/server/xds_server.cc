#include "xds/server/xds_server.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <map>
#include <stdexcept>

#include "config/config_error.h"
#include "xds/server/stream_types.h"
#include "xds/server/tls_credentials.h"
#include "xds/server/xds_metrics.h"
#include "xds/server/xds_stream.h"

namespace attache {
namespace {

struct Method {
  bool delta = false;
  std::optional<ResourceType> only_type;  // nullopt: ADS
};

// Every xDS method attache serves, by path.
const std::map<std::string, Method, std::less<>>& Methods() {
  static const auto* methods = [] {
    auto* out = new std::map<std::string, Method, std::less<>>{
        {"/envoy.service.discovery.v3.AggregatedDiscoveryService/"
         "StreamAggregatedResources",
         {false, std::nullopt}},
        {"/envoy.service.discovery.v3.AggregatedDiscoveryService/"
         "DeltaAggregatedResources",
         {true, std::nullopt}},
    };
    struct PerType {
      const char* service;
      const char* noun;
      ResourceType type;
    };
    for (const PerType& per_type :
         {PerType{"cluster.v3.ClusterDiscoveryService", "Clusters",
                  ResourceType::kCluster},
          PerType{"endpoint.v3.EndpointDiscoveryService", "Endpoints",
                  ResourceType::kEndpoint},
          PerType{"listener.v3.ListenerDiscoveryService", "Listeners",
                  ResourceType::kListener},
          PerType{"route.v3.RouteDiscoveryService", "Routes",
                  ResourceType::kRoute}}) {
      const std::string prefix =
          std::string("/envoy.service.") + per_type.service + "/";
      out->emplace(prefix + "Stream" + per_type.noun,
                   Method{false, per_type.type});
      out->emplace(prefix + "Delta" + per_type.noun,
                   Method{true, per_type.type});
    }
    return out;
  }();
  return *methods;
}

class Unimplemented final : public grpc::ServerGenericBidiReactor {
 public:
  explicit Unimplemented(const std::string& method) {
    Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "attache does not serve " + method));
  }
  void OnDone() override { delete this; }
};

}  // namespace

class XdsServer::Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(StreamRegistry* registry) : registry_(registry) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    const auto& methods = Methods();
    auto it = methods.find(context->method());
    if (it == methods.end()) {
      spdlog::debug("xds: unimplemented method {} from {}", context->method(),
                    context->peer());
      return new Unimplemented(context->method());
    }
    const Method& method = it->second;
    return XdsStream::Open(registry_, context,
                           method.delta ? MakeDeltaProtocol(method.only_type)
                                        : MakeSotwProtocol(method.only_type));
  }

 private:
  StreamRegistry* registry_;
};

XdsServer::XdsServer(SnapshotSetPtr initial, TtlConfig ttl)
    : registry_(std::move(initial), ttl),
      service_(std::make_unique<Service>(&registry_)) {
  XdsMetrics::Get();  // so that /metrics lists the counters from the start
}

XdsServer::~XdsServer() { Shutdown(std::chrono::milliseconds(0)); }

int XdsServer::Start(const std::string& address, const XdsTlsConfig& tls) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (tls.enabled()) {
    try {
      tls_ = std::make_unique<TlsCredentials>(tls);
    } catch (const TlsFileError& error) {
      throw ConfigError("xds.tls." + error.key() + ": " + error.what());
    }
    credentials = tls_->credentials();
    spdlog::info("xDS: {}", tls_->Describe());
  } else {
    credentials = grpc::InsecureServerCredentials();
    spdlog::info(
        "xDS: plaintext (no xds.tls): clients are not asked for "
        "certificates and nothing is encrypted");
  }
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, credentials, &port);
  // Long EDS subscriptions make large requests; accept them, up to a limit
  // (see kMaxRequestBytes).
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             kMaxStreamsPerConnection);
  builder.RegisterCallbackGenericService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    throw std::runtime_error("cannot listen for xDS on " + address);
  }
  if (tls_) {
    tls_->StartWatching();
  }
  if (registry_.ttl().ttl.count() > 0) {
    heartbeats_ = std::thread([this] { SendHeartbeats(); });
  }
  return port;
}

void XdsServer::SendHeartbeats() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (wake_.wait_for(lock, registry_.ttl().heartbeat,
                       [this] { return stopping_; })) {
      return;
    }
    lock.unlock();
    registry_.Heartbeat();
    lock.lock();
  }
}

void XdsServer::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (heartbeats_.joinable()) {
    heartbeats_.join();
  }
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_.reset();
  }
  tls_.reset();
}

}  // namespace attache
