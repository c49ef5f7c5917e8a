#include "admin/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace attache {
namespace {

// A loopback connection from `source` (any 127/8 address is this host).
int Connect(int port, const char* source = "127.0.0.1") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in from{};
  from.sin_family = AF_INET;
  inet_pton(AF_INET, source, &from.sin_addr);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)), 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  timeval wait{.tv_sec = 10, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  return fd;
}

void SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n =
        send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      return;  // the server may close early on purpose
    }
    sent += static_cast<size_t>(n);
  }
}

// Everything the server sends until it closes (or 10 s pass).
std::string ReadToClose(int fd) {
  std::string out;
  char buffer[4096];
  for (;;) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      return out;
    }
    out.append(buffer, static_cast<size_t>(n));
  }
}

std::string Ask(int port, const std::string& request,
                const char* source = "127.0.0.1") {
  const int fd = Connect(port, source);
  SendAll(fd, request);
  std::string reply = ReadToClose(fd);
  close(fd);
  return reply;
}

std::string Get(int port, const std::string& target) {
  return Ask(port, "GET " + target +
                       " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

class HttpServerTest : public testing::Test {
 protected:
  void StartWith(HttpLimits limits) {
    server_ = std::make_unique<HttpServer>(
        "test",
        std::map<std::string, HttpRoute>{{"/hello",
                                          [](const HttpQuery& query) {
                                            std::string body = "hello";
                                            for (const auto& [key, value] :
                                                 query) {
                                              body += " " + key + "=" + value;
                                            }
                                            return HttpResponse{.body = body};
                                          }},
                                         {"/broken",
                                          [](const HttpQuery&) -> HttpResponse {
                                            throw std::runtime_error("no");
                                          }}},
        limits);
    port_ = server_->Start(ListenAddress{"127.0.0.1", 0});
  }

  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(HttpServerTest, ServesRoutesAndRefusesWhatItDoesNotServe) {
  StartWith({});
  const std::string hello = Get(port_, "/hello?a=1&b=two");
  EXPECT_EQ(hello.rfind("HTTP/1.1 200", 0), 0U) << hello;
  EXPECT_NE(hello.find("hello a=1 b=two"), std::string::npos) << hello;
  EXPECT_EQ(Get(port_, "/nothing").rfind("HTTP/1.1 404", 0), 0U);
  EXPECT_EQ(Get(port_, "/broken").rfind("HTTP/1.1 500", 0), 0U);
  EXPECT_EQ(Ask(port_, "DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                .rfind("HTTP/1.1 405", 0),
            0U);
}

TEST_F(HttpServerTest, RefusesABodyWithoutReadingIt) {
  StartWith({});
  // 256 MiB announced, 1 MiB sent: the answer comes at once and the
  // connection closes, so nothing waits for (or buffers) the rest.
  const int fd = Connect(port_);
  SendAll(
      fd,
      "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 268435456\r\n\r\n");
  SendAll(fd, std::string(1 << 20, 'x'));
  const std::string reply = ReadToClose(fd);
  close(fd);
  EXPECT_EQ(reply.rfind("HTTP/1.1 405", 0), 0U) << reply.substr(0, 100);
  EXPECT_EQ(Ask(port_,
                "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
                "12345")
                .rfind("HTTP/1.1 413", 0),
            0U);
}

TEST_F(HttpServerTest, RefusesHeadersBeyondTheLimit) {
  StartWith({.max_request_header_bytes = 8192});
  std::string request = "GET /hello HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 2000; ++i) {
    request += "X-" + std::to_string(i) + ": y\r\n";
  }
  request += "\r\n";
  const std::string reply = Ask(port_, request);
  // libmicrohttpd answers 431 (or 413, by version) and closes.
  EXPECT_TRUE(reply.rfind("HTTP/1.1 431", 0) == 0 ||
              reply.rfind("HTTP/1.1 413", 0) == 0)
      << reply.substr(0, 100);
  EXPECT_EQ(Get(port_, "/hello").rfind("HTTP/1.1 200", 0), 0U);
}

TEST_F(HttpServerTest, CapsConnectionsPerPeerSoOthersStillGetIn) {
  StartWith({.max_connections = 8, .max_connections_per_peer = 3});
  std::vector<int> idle;
  for (int i = 0; i < 3; ++i) {
    idle.push_back(Connect(port_, "127.0.0.2"));
  }
  // The server takes them in its own time: poll until the fourth from the
  // same peer is refused (closed without an answer).
  std::string refused = "not refused";
  for (int attempt = 0; attempt < 100 && !refused.empty(); ++attempt) {
    refused = Ask(port_,
                  "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                  "127.0.0.2");
  }
  EXPECT_EQ(refused, "");
  EXPECT_EQ(Get(port_, "/hello").rfind("HTTP/1.1 200", 0), 0U);
  for (const int fd : idle) {
    close(fd);
  }
  // Closed connections give their slots back.
  std::string again;
  for (int attempt = 0; attempt < 100 && again.empty(); ++attempt) {
    again = Ask(port_,
                "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "127.0.0.2");
  }
  EXPECT_EQ(again.rfind("HTTP/1.1 200", 0), 0U);
}

TEST_F(HttpServerTest, ClosesIdleConnections) {
  StartWith({.idle_timeout = std::chrono::milliseconds(1000)});
  const int fd = Connect(port_);
  SendAll(fd, "GET /hel");  // and then nothing: a slowloris
  const auto start = std::chrono::steady_clock::now();
  const std::string reply = ReadToClose(fd);  // returns when closed
  close(fd);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(9));
  EXPECT_EQ(reply.find("200"), std::string::npos);
}

}  // namespace
}  // namespace attache
