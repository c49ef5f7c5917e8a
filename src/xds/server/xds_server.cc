#include "xds/server/xds_server.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>

#include <map>
#include <stdexcept>

#include "xds/server/sotw_stream.h"

namespace attache {
namespace {

// Method path -> the resource type a per-type service carries (nullopt: ADS).
const std::map<std::string, std::optional<ResourceType>, std::less<>>&
SotwMethods() {
  static const auto* methods =
      new std::map<std::string, std::optional<ResourceType>, std::less<>>{
          {"/envoy.service.discovery.v3.AggregatedDiscoveryService/"
           "StreamAggregatedResources",
           std::nullopt},
          {"/envoy.service.cluster.v3.ClusterDiscoveryService/StreamClusters",
           ResourceType::kCluster},
          {"/envoy.service.endpoint.v3.EndpointDiscoveryService/"
           "StreamEndpoints",
           ResourceType::kEndpoint},
          {"/envoy.service.listener.v3.ListenerDiscoveryService/"
           "StreamListeners",
           ResourceType::kListener},
          {"/envoy.service.route.v3.RouteDiscoveryService/StreamRoutes",
           ResourceType::kRoute},
      };
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
    const auto& methods = SotwMethods();
    auto it = methods.find(context->method());
    if (it == methods.end()) {
      spdlog::debug("xds: unimplemented method {} from {}", context->method(),
                    context->peer());
      return new Unimplemented(context->method());
    }
    return SotwStream::Open(registry_, context, it->second);
  }

 private:
  StreamRegistry* registry_;
};

XdsServer::XdsServer(SnapshotSetPtr initial)
    : registry_(std::move(initial)),
      service_(std::make_unique<Service>(&registry_)) {}

XdsServer::~XdsServer() { Shutdown(std::chrono::milliseconds(0)); }

int XdsServer::Start(const std::string& address) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  // Long EDS subscriptions make large requests; accept them.
  builder.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.RegisterCallbackGenericService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    throw std::runtime_error("cannot listen for xDS on " + address);
  }
  return port;
}

void XdsServer::Shutdown(std::chrono::milliseconds grace) {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_.reset();
  }
}

}  // namespace attache
