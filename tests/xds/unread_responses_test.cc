// A client that ACKs responses it never reads (it guesses the nonces) made
// attache queue one response per catalog change on its stream, without
// limit. The stream now ends once more than kMaxQueuedResponses wait.
//
// The client is a hand-written HTTP/2 client on a plain socket that never
// reads: it never opens its flow-control window, so attache can write at
// most 64 KiB to it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/server/xds_server.h"

namespace attache {
namespace {

using envoy::service::discovery::v3::DiscoveryRequest;

constexpr char kEdsUrl[] =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

// One catalog generation: a service whose load assignment (over 64 KiB)
// changes with `generation`.
SnapshotSetPtr Generation(uint64_t generation, const SnapshotSetPtr& previous) {
  CatalogSnapshot catalog;
  catalog.generation = generation;
  Service service;
  for (uint32_t i = 0; i < 5000; ++i) {
    Endpoint endpoint;
    endpoint.address = "127.0.0.1";
    endpoint.port = static_cast<uint32_t>(1000 + i + generation);
    service.endpoints.push_back(endpoint);
  }
  catalog.services["big"] = service;
  return BuildSnapshotSet(catalog, TranslateOptions{}, previous);
}

std::string Frame(uint8_t type, uint8_t flags, uint32_t stream,
                  const std::string& payload) {
  std::string out;
  const auto length = static_cast<uint32_t>(payload.size());
  out.push_back(static_cast<char>((length >> 16U) & 0xFFU));
  out.push_back(static_cast<char>((length >> 8U) & 0xFFU));
  out.push_back(static_cast<char>(length & 0xFFU));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(
        static_cast<char>((stream >> static_cast<unsigned>(shift)) & 0xFFU));
  }
  return out + payload;
}

// An HPACK literal header field without indexing (no Huffman coding).
std::string Literal(const std::string& name, const std::string& value) {
  return std::string(1, '\0') + static_cast<char>(name.size()) + name +
         static_cast<char>(value.size()) + value;
}

class BlindClient {
 public:
  explicit BlindClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(
        connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
        0);
    const std::string headers =
        Literal(":method", "POST") + Literal(":scheme", "http") +
        Literal(":path",
                "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
                "StreamAggregatedResources") +
        Literal(":authority", "127.0.0.1") +
        Literal("content-type", "application/grpc") + Literal("te", "trailers");
    Write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + Frame(4, 0, 0, "") +
          Frame(4, 1, 0, "") + Frame(1, 4, 1, headers));
  }
  ~BlindClient() { close(fd_); }
  BlindClient(const BlindClient&) = delete;
  BlindClient& operator=(const BlindClient&) = delete;

  void Send(const DiscoveryRequest& request) {
    const std::string message = request.SerializeAsString();
    std::string body(1, '\0');
    const auto length = static_cast<uint32_t>(message.size());
    for (int shift = 24; shift >= 0; shift -= 8) {
      body.push_back(
          static_cast<char>((length >> static_cast<unsigned>(shift)) & 0xFFU));
    }
    Write(Frame(0, 0, 1, body + message));
  }

 private:
  void Write(const std::string& bytes) {
    ASSERT_EQ(send(fd_, bytes.data(), bytes.size(), 0),
              static_cast<ssize_t>(bytes.size()));
  }
  int fd_ = -1;
};

// The /debug/clients entry of node "blind", or null.
nlohmann::json Blind(XdsServer& server) {
  for (const nlohmann::json& client : server.registry().ClientsJson()) {
    if (client["node_id"] == "blind") {
      return client;
    }
  }
  return nullptr;
}

bool Eventually(const std::function<bool()>& condition) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

TEST(UnreadResponsesTest, StreamEndsInsteadOfQueueingEveryVersion) {
  uint64_t generation = 1;
  SnapshotSetPtr snapshots = Generation(generation, nullptr);
  XdsServer server(snapshots);
  const int port = server.Start("127.0.0.1:0");

  BlindClient client(port);
  DiscoveryRequest request;
  request.mutable_node()->set_id("blind");
  request.set_type_url(kEdsUrl);
  request.add_resource_names("big");
  client.Send(request);
  ASSERT_TRUE(Eventually([&] {
    const nlohmann::json blind = Blind(server);
    return !blind.is_null() && blind["types"].contains(kEdsUrl) &&
           !blind["types"][kEdsUrl]["sent_nonce"].get<std::string>().empty();
  }));

  size_t most_queued = 0;
  bool closing = false;
  for (int round = 0; round < 45 && !closing; ++round) {
    const nlohmann::json before = Blind(server);
    const std::string nonce = before["types"][kEdsUrl]["sent_nonce"];
    // The ACK of a response the client has not read (it cannot have).
    DiscoveryRequest ack;
    ack.set_type_url(kEdsUrl);
    ack.add_resource_names("big");
    ack.set_response_nonce(nonce);
    client.Send(ack);
    ASSERT_TRUE(Eventually([&] {
      return !Blind(server)["types"][kEdsUrl]["awaiting_ack"].get<bool>();
    }));
    snapshots = Generation(++generation, snapshots);
    server.registry().Publish(snapshots);
    ASSERT_TRUE(Eventually([&] {
      const nlohmann::json blind = Blind(server);
      return blind["closing"].get<bool>() ||
             blind["types"][kEdsUrl]["sent_nonce"] != nonce;
    }));
    const nlohmann::json after = Blind(server);
    most_queued =
        std::max(most_queued, after["queued_responses"].get<size_t>());
    closing = after["closing"].get<bool>();
  }
  EXPECT_TRUE(closing) << "45 responses queued for a client that reads none";
  EXPECT_EQ(most_queued, kMaxQueuedResponses);
  // Only the response gRPC is still writing is kept.
  EXPECT_LE(Blind(server)["queued_responses"].get<size_t>(), 1U);
  server.Shutdown(std::chrono::milliseconds(0));
}

}  // namespace
}  // namespace attache
