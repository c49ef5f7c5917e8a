#include "sources/registry/registry_source.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace attache {
namespace {

using std::chrono::milliseconds;
using State = SourceStatus::State;

constexpr char kSource[] = "legacy";

// A registry on 127.0.0.1 that answers what the test says, per service.
class FakeRegistry {
 public:
  struct Reply {
    int status = 200;
    std::string body;
    bool hang = false;  // holds the request until the registry goes away
  };

  explicit FakeRegistry(int port = 0) {
    // One request at a time, one per connection: with concurrent workers
    // TSan reports false races inside the (uninstrumented) httplib library,
    // whose lazily built statics it cannot see synchronised.
    server_.new_task_queue = [] { return new httplib::ThreadPool(1); };
    server_.set_keep_alive_max_count(1);
    server_.Get(
        R"(/v1/registration/(.+))",
        [this](const httplib::Request& request, httplib::Response& response) {
          Serve(request.matches[1], response);
        });
    server_.Get("/elsewhere",
                [](const httplib::Request&, httplib::Response& response) {
                  response.set_content(R"({"hosts": []})", "application/json");
                });
    port_ = port == 0 ? server_.bind_to_any_port("127.0.0.1")
                      : (server_.bind_to_port("127.0.0.1", port) ? port : -1);
    if (port_ <= 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs would be lost, and join would hang.
    while (!server_.is_running()) {
      std::this_thread::yield();
    }
  }

  ~FakeRegistry() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    released_.notify_all();
    server_.stop();
    thread_.join();
  }

  FakeRegistry(const FakeRegistry&) = delete;
  FakeRegistry& operator=(const FakeRegistry&) = delete;

  int port() const { return port_; }
  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

  void Set(const std::string& service, Reply reply) {
    std::lock_guard lock(mu_);
    replies_[service] = std::move(reply);
  }
  void Hosts(const std::string& service,
             const std::vector<nlohmann::json>& hosts) {
    Set(service, Reply{200, nlohmann::json{{"service", service},
                                           {"env", "test"},
                                           {"hosts", hosts}}
                                .dump()});
  }
  int requests(const std::string& service) {
    std::lock_guard lock(mu_);
    return requests_[service];
  }
  int hanging() {
    std::lock_guard lock(mu_);
    return hanging_;
  }

 private:
  void Serve(const std::string& service, httplib::Response& response) {
    std::unique_lock lock(mu_);
    ++requests_[service];
    const auto found = replies_.find(service);
    if (found == replies_.end()) {
      response.status = 404;
      return;
    }
    const Reply reply = found->second;
    if (reply.hang) {
      ++hanging_;
      released_.wait_for(lock, std::chrono::seconds(10),
                         [this] { return closing_; });
      --hanging_;
    }
    response.status = reply.status;
    if (reply.status == 302) {
      response.set_header("Location", "/elsewhere");
    }
    response.set_content(reply.body, "application/json");
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable released_;
  bool closing_ = false;
  std::map<std::string, Reply> replies_;
  std::map<std::string, int> requests_;
  int hanging_ = 0;
};

// A "registry" that accepts connections and never answers (nor reads).
class BlackHole {
 public:
  BlackHole() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof(address);
    auto* raw = reinterpret_cast<sockaddr*>(&address);
    if (fd_ < 0 || bind(fd_, raw, size) != 0 || listen(fd_, 128) != 0 ||
        getsockname(fd_, raw, &size) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int conn = accept(fd_, nullptr, nullptr);
        if (conn < 0) {
          return;
        }
        std::lock_guard lock(mu_);
        held_.push_back(conn);
      }
    });
  }
  ~BlackHole() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (const int conn : held_) {
      close(conn);
    }
  }
  BlackHole(const BlackHole&) = delete;
  BlackHole& operator=(const BlackHole&) = delete;

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  size_t accepted() {
    std::lock_guard lock(mu_);
    return held_.size();
  }

 private:
  int fd_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> held_;
};

nlohmann::json Host(const std::string& ip, int port,
                    const std::string& az = "us-east-1a", int weight = 1) {
  return {{"ip_address", ip},
          {"port", port},
          {"revision", "r1"},
          {"service", "ignored"},
          {"last_check_in", "2024-05-01T10:00:00"},
          {"tags",
           {{"az", az},
            {"region", "us-east-1"},
            {"instance_id", "i-" + std::to_string(port)},
            {"canary", false},
            {"load_balancing_weight", weight}}}};
}

RegistrySourceConfig ConfigFor(const std::string& url,
                               std::vector<std::string> services) {
  RegistrySourceConfig config;
  config.url = url;
  config.services = std::move(services);
  config.interval = milliseconds(20);
  config.timeout = milliseconds(1000);
  config.confirm_empty = 2;
  // These tests change hosts wholesale; RegistryService's own tests cover
  // the mass-removal guard.
  config.removal_window = milliseconds(0);
  return config;
}

std::vector<uint32_t> Ports(const Catalog& catalog, const std::string& name) {
  const auto snapshot = catalog.Current();
  const auto found = snapshot->services.find(name);
  if (found == snapshot->services.end()) {
    return {};
  }
  std::vector<uint32_t> ports;
  for (const Endpoint& endpoint : found->second->endpoints) {
    ports.push_back(endpoint.port);
  }
  return ports;
}

bool Serves(const Catalog& catalog, const std::string& name) {
  return catalog.Current()->services.count(name) > 0;
}

SourceStatus StatusOf(const Catalog& catalog) {
  return catalog.Sources().at(kSource);
}

::testing::AssertionResult Contains(const std::string& text,
                                    const std::string& part) {
  if (text.find(part) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not contain \"" << part << "\"";
}

template <typename Predicate>
bool WaitFor(Predicate predicate) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  return predicate();
}

using Ports_ = std::vector<uint32_t>;

TEST(RegistrySource, PublishesEveryServiceWithItsMapping) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8002, "us-east-1b", 5),
                           Host("127.0.0.1", 8001)});
  registry.Hosts("beta", {});
  Catalog catalog({kSource});
  RegistrySource source(kSource, ConfigFor(registry.url(), {"alpha", "beta"}),
                        &catalog);
  source.LoadInitial();

  EXPECT_EQ(StatusOf(catalog).state, State::kSynced);
  const auto snapshot = catalog.Current();
  ASSERT_EQ(snapshot->services.size(), 2U);
  const auto& alpha = snapshot->services.at("alpha")->endpoints;
  ASSERT_EQ(alpha.size(), 2U);
  EXPECT_EQ(alpha[0].port, 8001U);
  EXPECT_EQ(alpha[1].locality.zone, "us-east-1b");
  EXPECT_EQ(alpha[1].locality.region, "us-east-1");
  EXPECT_EQ(alpha[1].weight, 5U);
  EXPECT_EQ(alpha[1].metadata.at("instance_id"), "i-8002");
  EXPECT_EQ(alpha[1].origin, kSource);
  // A service the registry knows with no hosts is served, empty.
  EXPECT_TRUE(snapshot->services.at("beta")->endpoints.empty());
}

TEST(RegistrySource, KeepsTheLastGoodEndpointsWhenTheRegistryFails) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  Catalog catalog({kSource});
  RegistrySource source(kSource, ConfigFor(registry.url(), {"alpha"}),
                        &catalog);
  source.LoadInitial();
  ASSERT_EQ(Ports(catalog, "alpha"), Ports_{8001});

  registry.Set("alpha", {500, "internal error", false});
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
  SourceStatus status = StatusOf(catalog);
  EXPECT_EQ(status.state, State::kStale);
  EXPECT_TRUE(Contains(status.last_error, registry.url()));
  EXPECT_TRUE(Contains(status.last_error, "service alpha"));
  EXPECT_TRUE(Contains(status.last_error, "HTTP 500"));

  registry.Set("alpha", {200, "<html>oops</html>", false});
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
  EXPECT_TRUE(Contains(StatusOf(catalog).last_error, "not valid JSON"));

  registry.Set("alpha", {200, R"({"service": "alpha"})", false});
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
  EXPECT_TRUE(Contains(StatusOf(catalog).last_error, "no \"hosts\""));
  EXPECT_EQ(source.failed_fetches(), 3U);

  // Recovery: the next good answer is served and the source is fresh again.
  registry.Hosts("alpha", {Host("127.0.0.1", 8002)});
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8002});
  EXPECT_EQ(StatusOf(catalog).state, State::kSynced);
}

TEST(RegistrySource, KeepsTheLastGoodEndpointsWhenTheRegistryTimesOut) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  Catalog catalog({kSource});
  RegistrySourceConfig config = ConfigFor(registry.url(), {"alpha"});
  config.timeout = milliseconds(200);
  RegistrySource source(kSource, config, &catalog);
  source.LoadInitial();

  registry.Set("alpha", {200, "{\"hosts\": []}", true});
  const auto start = std::chrono::steady_clock::now();
  source.PollOnce();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
  const SourceStatus status = StatusOf(catalog);
  EXPECT_EQ(status.state, State::kStale);
  EXPECT_TRUE(Contains(status.last_error, "service alpha"));
  EXPECT_TRUE(Contains(status.last_error, "timed out"));
}

TEST(RegistrySource, OneFailingServiceDoesNotHoldBackTheOthers) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  registry.Hosts("beta", {Host("127.0.0.1", 9001)});
  Catalog catalog({kSource});
  RegistrySource source(kSource, ConfigFor(registry.url(), {"alpha", "beta"}),
                        &catalog);
  source.LoadInitial();

  registry.Hosts("alpha", {Host("127.0.0.1", 8002)});
  registry.Set("beta", {503, "", false});
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8002});  // alpha answered
  EXPECT_EQ(Ports(catalog, "beta"), Ports_{9001});   // beta: last good
  EXPECT_EQ(StatusOf(catalog).state, State::kStale);
  EXPECT_TRUE(Contains(StatusOf(catalog).last_error, "service beta: HTTP 503"));
  EXPECT_FALSE(Contains(StatusOf(catalog).last_error, "alpha"));

  registry.Hosts("beta", {Host("127.0.0.1", 9002)});
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8002});
  EXPECT_EQ(Ports(catalog, "beta"), Ports_{9002});
  EXPECT_EQ(StatusOf(catalog).state, State::kSynced);
}

TEST(RegistrySource, AnUnreachableRegistryAtStartUpIsNotFatal) {
  int port = 0;
  {
    FakeRegistry gone;
    port = gone.port();
  }
  Catalog catalog({kSource});
  RegistrySource source(
      kSource, ConfigFor("http://127.0.0.1:" + std::to_string(port), {"alpha"}),
      &catalog);
  EXPECT_NO_THROW(source.LoadInitial());
  SourceStatus status = StatusOf(catalog);
  EXPECT_TRUE(status.attempted);
  EXPECT_FALSE(status.synced_once);
  EXPECT_EQ(status.state, State::kStarting);
  EXPECT_TRUE(Contains(status.last_error, "service alpha"));
  EXPECT_TRUE(catalog.AllAttempted());
  EXPECT_FALSE(Serves(catalog, "alpha"));

  FakeRegistry registry(port);
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
  EXPECT_EQ(StatusOf(catalog).state, State::kSynced);
}

// A registry listing hosts of which none decodes is broken, not empty: with
// the empty guard alone it would drain the service once "confirmed".
TEST(RegistrySource, AnAnswerWithNoUsableHostIsAFailureNotAnEmptyAnswer) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  Catalog catalog({kSource});
  RegistrySourceConfig config = ConfigFor(registry.url(), {"alpha"});
  config.confirm_empty = 1;
  RegistrySource source(kSource, config, &catalog);
  source.LoadInitial();
  ASSERT_EQ(Ports(catalog, "alpha"), Ports_{8001});

  registry.Hosts("alpha", {Host("not-an-ip", 8002), Host("127.0.0.1", 0)});
  for (int round = 0; round < 3; ++round) {
    source.PollOnce();
  }
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
  const SourceStatus status = StatusOf(catalog);
  EXPECT_EQ(status.state, State::kStale);
  EXPECT_TRUE(Contains(status.last_error,
                       "service alpha: none of its 2 hosts is usable "
                       "(hosts[0]: ip_address \"not-an-ip\" is not an IP"));
  EXPECT_EQ(source.failed_fetches(), 3U);
  EXPECT_EQ(source.held_empty(), 0U);

  // One good host among bad ones is an answer.
  registry.Hosts("alpha", {Host("not-an-ip", 8002), Host("127.0.0.1", 8003)});
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8003});
  EXPECT_EQ(StatusOf(catalog).state, State::kSynced);
}

// attache listens only after the first round: 20 services of a registry that
// never answers took 5 timeouts (4 at a time), a minute with 100 services
// and the default 2 s, long enough for a liveness probe to kill the pod.
TEST(RegistrySource, AtStartUpARegistryThatNeverAnswersCostsOneTimeout) {
  BlackHole hole;
  std::vector<std::string> services;
  for (int i = 0; i < 20; ++i) {
    services.push_back("svc-" + std::to_string(i));
  }
  Catalog catalog({kSource});
  RegistrySourceConfig config = ConfigFor(hole.url(), services);
  config.timeout = milliseconds(300);
  RegistrySource source(kSource, config, &catalog);
  const auto start = std::chrono::steady_clock::now();
  source.LoadInitial();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1200));
  EXPECT_EQ(hole.accepted(), RegistryClient::kParallel);
  const SourceStatus status = StatusOf(catalog);
  EXPECT_TRUE(status.attempted);
  EXPECT_TRUE(Contains(status.last_error, "service svc-0: "));
  EXPECT_TRUE(Contains(status.last_error, "timed out"));
  EXPECT_EQ(source.failed_fetches(), 20U);

  // Polling rounds still ask every service.
  source.PollOnce();
  EXPECT_TRUE(WaitFor([&] { return hole.accepted() == 4 + services.size(); }));
}

// Error statuses are answers: the registry is there, so the round goes on.
TEST(RegistrySource, AtStartUpErrorAnswersDoNotCutTheRoundShort) {
  FakeRegistry registry;
  std::vector<std::string> services;
  for (int i = 0; i < 10; ++i) {
    services.push_back("svc-" + std::to_string(i));
    if (i < 6) {
      registry.Set(services.back(), {500, "", false});
    } else {
      registry.Hosts(services.back(), {Host("127.0.0.1", 8000 + i)});
    }
  }
  Catalog catalog({kSource});
  RegistrySource source(kSource, ConfigFor(registry.url(), services), &catalog);
  source.LoadInitial();
  for (int i = 6; i < 10; ++i) {
    EXPECT_EQ(Ports(catalog, services[i]),
              Ports_{static_cast<uint32_t>(8000 + i)});
  }
  EXPECT_FALSE(Contains(StatusOf(catalog).last_error, "not asked"));
}

TEST(RegistrySource, AnEmptyAnswerIsAppliedOnlyWhenConfirmed) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  Catalog catalog({kSource});
  RegistrySourceConfig config = ConfigFor(registry.url(), {"alpha"});
  config.confirm_empty = 3;
  RegistrySource source(kSource, config, &catalog);
  source.LoadInitial();

  registry.Hosts("alpha", {});
  source.PollOnce();
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
  EXPECT_EQ(source.held_empty(), 2U);
  // Holding back an empty answer is not a failure of the source.
  EXPECT_EQ(StatusOf(catalog).state, State::kSynced);

  source.PollOnce();
  EXPECT_TRUE(Serves(catalog, "alpha"));
  EXPECT_TRUE(Ports(catalog, "alpha").empty());
  EXPECT_EQ(source.held_empty(), 2U);
}

TEST(RegistrySource, HostsBetweenEmptyAnswersRestartTheConfirmation) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  Catalog catalog({kSource});
  RegistrySource source(kSource, ConfigFor(registry.url(), {"alpha"}),
                        &catalog);
  source.LoadInitial();

  registry.Hosts("alpha", {});
  source.PollOnce();
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  source.PollOnce();
  registry.Hosts("alpha", {});
  source.PollOnce();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
  // A failed fetch is no answer: it neither confirms nor restarts.
  registry.Set("alpha", {500, "", false});
  source.PollOnce();
  registry.Hosts("alpha", {});
  source.PollOnce();
  EXPECT_TRUE(Ports(catalog, "alpha").empty());
  EXPECT_EQ(source.held_empty(), 2U);
}

TEST(RegistrySource, BadHostsAreSkippedAndCounted) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8001), Host("127.0.0.1", 0),
                           Host("not-an-ip", 8003)});
  Catalog catalog({kSource});
  RegistrySource source(kSource, ConfigFor(registry.url(), {"alpha"}),
                        &catalog);
  source.LoadInitial();
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
  EXPECT_EQ(source.skipped_hosts(), 2U);
  EXPECT_EQ(StatusOf(catalog).state, State::kSynced);
}

TEST(RegistrySource, FollowsNoRedirect) {
  FakeRegistry registry;
  registry.Set("alpha", {302, "", false});
  Catalog catalog({kSource});
  RegistrySource source(kSource, ConfigFor(registry.url(), {"alpha"}),
                        &catalog);
  source.LoadInitial();
  EXPECT_TRUE(Contains(StatusOf(catalog).last_error, "HTTP 302"));
  EXPECT_FALSE(Serves(catalog, "alpha"));
}

TEST(RegistrySource, IgnoresProxySettingsOfTheEnvironment) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  Catalog catalog({kSource});
  RegistrySource source(kSource, ConfigFor(registry.url(), {"alpha"}),
                        &catalog);
  // A proxy that does not exist: going through it would fail. No other
  // thread reads the environment meanwhile.
  const char* const nowhere = "http://127.0.0.1:9";
  setenv("http_proxy", nowhere, 1);  // NOLINT(concurrency-mt-unsafe)
  setenv("HTTP_PROXY", nowhere, 1);  // NOLINT(concurrency-mt-unsafe)
  source.LoadInitial();
  unsetenv("http_proxy");  // NOLINT(concurrency-mt-unsafe)
  unsetenv("HTTP_PROXY");  // NOLINT(concurrency-mt-unsafe)
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8001});
}

TEST(RegistrySource, KeepsCredentialsOfTheUrlOutOfMessages) {
  FakeRegistry registry;
  registry.Set("alpha", {500, "", false});
  Catalog catalog({kSource});
  RegistrySource source(kSource,
                        ConfigFor("http://user:s3cret@127.0.0.1:" +
                                      std::to_string(registry.port()),
                                  {"alpha"}),
                        &catalog);
  source.LoadInitial();
  const std::string error = StatusOf(catalog).last_error;
  EXPECT_TRUE(Contains(error, "HTTP 500"));
  EXPECT_FALSE(Contains(error, "s3cret"));
}

TEST(RegistrySource, PollsInTheBackgroundAndStopsPromptly) {
  FakeRegistry registry;
  registry.Hosts("alpha", {Host("127.0.0.1", 8001)});
  Catalog catalog({kSource});
  RegistrySourceConfig config = ConfigFor(registry.url(), {"alpha"});
  config.timeout = milliseconds(30'000);
  RegistrySource source(kSource, config, &catalog);
  source.LoadInitial();
  source.Start();

  registry.Hosts("alpha", {Host("127.0.0.1", 8002)});
  EXPECT_TRUE(WaitFor([&] { return Ports(catalog, "alpha") == Ports_{8002}; }));

  // A request that would hang for the whole (long) timeout must not hold up
  // shutdown.
  registry.Set("alpha", {200, "", true});
  ASSERT_TRUE(WaitFor([&] { return registry.hanging() > 0; }));
  const auto start = std::chrono::steady_clock::now();
  source.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1500));
  // Stopping is not a failure of the registry.
  EXPECT_EQ(StatusOf(catalog).state, State::kSynced);
  EXPECT_EQ(Ports(catalog, "alpha"), Ports_{8002});
}

}  // namespace
}  // namespace attache
