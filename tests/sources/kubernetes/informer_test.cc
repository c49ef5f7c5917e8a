// The informer against a fake API server on 127.0.0.1: paging, events,
// relisting on 410 and on a malformed event, backing off when the server
// keeps failing, hung and never-ending watches. The real API server is in
// e2e/kubernetes (test_k8s_faults.py puts faults in front of it).
#include "sources/kubernetes/informer.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace attache {
namespace {

std::string ServiceJson(const std::string& name, int port) {
  return R"({"metadata":{"name":")" + name +
         R"(","namespace":"default","resourceVersion":"5"},"spec":{"ports":[{"port":)" +
         std::to_string(port) + "}]}}";
}

class FakeApiServer {
 public:
  enum class Last {
    kHold,    // the last script keeps the stream open until the server stops
    kRepeat,  // every later watch gets the last script and ends
    kHang,    // watches after the scripts are never answered at all
    kCut,     // watches after the scripts are cut after 1.1 s of silence
  };
  // Each watch request gets the next script.
  explicit FakeApiServer(std::vector<std::vector<std::string>> watch_scripts,
                         Last last = Last::kHold)
      : scripts_(std::move(watch_scripts)), last_(last) {
    server_.Get("/api/v1/services", [this](const httplib::Request& request,
                                           httplib::Response& response) {
      if (request.has_param("watch")) {
        Watch(response);
        return;
      }
      const int list = ++lists_;
      if (request.get_param_value("continue") == "page2") {
        response.set_content(
            R"({"metadata":{"resourceVersion":"10"},"items":[)" +
                ServiceJson("b", 81) + "]}",
            "application/json");
        return;
      }
      // The first list is paged; later ones return one page.
      const std::string more =
          list == 1 ? R"(,"continue":"page2")" : std::string();
      response.set_content(
          R"({"metadata":{"resourceVersion":"10")" + more + R"(},"items":[)" +
              ServiceJson(list == 1 ? "a" : "relisted", 80) + "]}",
          "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }

  ~FakeApiServer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    server_.stop();
    thread_.join();
  }

  std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  int lists() const { return lists_; }
  size_t watches() const { return watches_; }
  std::vector<std::chrono::steady_clock::time_point> watch_starts() {
    std::lock_guard lock(mu_);
    return watch_starts_;
  }

 private:
  void Watch(httplib::Response& response) {
    const size_t index = watches_++;
    {
      std::lock_guard lock(mu_);
      watch_starts_.push_back(std::chrono::steady_clock::now());
    }
    if (last_ == Last::kCut && index >= scripts_.size()) {
      response.set_chunked_content_provider(
          "application/json", [this](size_t, httplib::DataSink&) {
            std::unique_lock lock(mu_);
            wake_.wait_for(lock, std::chrono::milliseconds(1100),
                           [this] { return stopping_; });
            return false;  // drops the connection mid-stream
          });
      return;
    }
    if (last_ == Last::kHang && index >= scripts_.size()) {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_; });
      return;
    }
    std::vector<std::string> lines =
        index < scripts_.size() ? scripts_[index] : std::vector<std::string>{};
    if (last_ == Last::kRepeat && index >= scripts_.size()) {
      lines = scripts_.back();
    }
    const bool hold = last_ == Last::kHold && index + 1 >= scripts_.size();
    response.set_chunked_content_provider(
        "application/json",
        [this, lines, hold](size_t, httplib::DataSink& sink) {
          for (const auto& line : lines) {
            const std::string chunk = line + "\n";
            sink.write(chunk.data(), chunk.size());
          }
          if (hold) {
            std::unique_lock lock(mu_);
            wake_.wait(lock, [this] { return stopping_; });
          }
          sink.done();
          return true;
        });
  }

  std::vector<std::vector<std::string>> scripts_;
  const Last last_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<int> lists_{0};
  std::atomic<size_t> watches_{0};
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::chrono::steady_clock::time_point> watch_starts_;
};

struct Observed {
  std::mutex mu;
  std::condition_variable changed;
  std::map<std::string, KubeService> store;
  std::vector<std::string> failures;

  bool WaitFor(const std::function<bool()>& done) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, std::chrono::seconds(30), done);
  }
};

Informer<KubeService>::Callbacks Record(Observed* observed) {
  return {[observed](const Informer<KubeService>::Store& store,
                     const std::string* /*key*/) {
            std::lock_guard lock(observed->mu);
            observed->store = store;
            observed->changed.notify_all();
          },
          [observed](const std::string& message) {
            std::lock_guard lock(observed->mu);
            observed->failures.push_back(message);
            observed->changed.notify_all();
          }};
}

ClusterAccess Access(const std::string& url) {
  ClusterAccess access;
  access.server = url;
  return access;
}

// A Services informer on `url` that records what it reports.
struct Watched {
  explicit Watched(
      const std::string& url,
      std::chrono::milliseconds request_timeout = std::chrono::seconds(5),
      std::chrono::milliseconds watch_timeout = std::chrono::seconds(60))
      : client(Access(url), request_timeout),
        informer(&client, "/api/v1/services", "", watch_timeout,
                 &DecodeServiceList, &DecodeServiceEvent, Record(&observed)) {}

  KubeClient client;
  Observed observed;
  Informer<KubeService> informer;
};

TEST(Informer, ListsAllPagesThenAppliesWatchEvents) {
  FakeApiServer api(
      {{R"({"type":"ADDED","object":)" + ServiceJson("c", 82) + "}",
        R"({"type":"DELETED","object":)" + ServiceJson("a", 80) + "}",
        R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}})"}});
  Watched watched(api.url());
  Observed& observed = watched.observed;
  Informer<KubeService>& informer = watched.informer;
  ASSERT_TRUE(informer.List());
  {
    std::lock_guard lock(observed.mu);
    EXPECT_EQ(observed.store.size(), 2U);  // a (page 1) and b (page 2)
  }
  informer.Start(true);
  EXPECT_TRUE(observed.WaitFor([&] {
    return observed.store.contains("default/c") &&
           !observed.store.contains("default/a");
  }));
  informer.Stop();
  EXPECT_EQ(api.lists(), 2);  // two pages, one list
}

TEST(Informer, ExpiredResourceVersionMeansAFreshList) {
  FakeApiServer api(
      {{R"({"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old"}})"},
       {}});
  Watched watched(api.url());
  Observed& observed = watched.observed;
  Informer<KubeService>& informer = watched.informer;
  ASSERT_TRUE(informer.List());
  informer.Start(true);
  EXPECT_TRUE(observed.WaitFor(
      [&] { return observed.store.contains("default/relisted"); }));
  informer.Stop();
  std::lock_guard lock(observed.mu);
  EXPECT_TRUE(observed.failures.empty());  // a 410 is routine, not a failure
}

TEST(Informer, MalformedEventIsReportedAndTheStoreRelisted) {
  FakeApiServer api({{"{this is not json"}, {}});
  Watched watched(api.url());
  Observed& observed = watched.observed;
  Informer<KubeService>& informer = watched.informer;
  ASSERT_TRUE(informer.List());
  informer.Start(true);
  EXPECT_TRUE(observed.WaitFor(
      [&] { return observed.store.contains("default/relisted"); }));
  informer.Stop();
  std::lock_guard lock(observed.mu);
  ASSERT_FALSE(observed.failures.empty());
  EXPECT_NE(observed.failures[0].find("malformed event"), std::string::npos);
}

bool AnyFailureContains(Observed* observed, const std::string& text) {
  std::lock_guard lock(observed->mu);
  return std::any_of(
      observed->failures.begin(), observed->failures.end(),
      [&](const std::string& f) { return f.find(text) != std::string::npos; });
}

// A server answering every watch with 410 while lists work: relisting at
// once after each 410 made a list+watch loop as fast as the server answered
// (hundreds of lists a second). The informer must back off and say so.
TEST(Informer, GoneAgainAndAgainBacksOffInsteadOfRelistingInALoop) {
  FakeApiServer api(
      {{R"({"type":"ERROR","object":{"kind":"Status","code":410,"message":"too old"}})"}},
      FakeApiServer::Last::kRepeat);
  Watched watched(api.url());
  ASSERT_TRUE(watched.informer.List());
  watched.informer.Start(true);
  // Bounded observation window: a rate cannot be polled for.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  watched.informer.Stop();
  // The first 410 relists at once; later ones wait 125-250 ms, 250-500 ms,
  // 500-1000 ms... so 2 s hold at most 1 + 1 + 4 lists.
  EXPECT_GE(api.lists(), 3);
  EXPECT_LE(api.lists(), 8);
  EXPECT_TRUE(AnyFailureContains(&watched.observed, "410) again"));
}

// A server that accepts a watch and never answers: the request timeout
// bounds the wait for its answer, not the two-minute idle limit.
TEST(Informer, WatchNeverAnsweredFailsAfterTheRequestTimeout) {
  FakeApiServer api({}, FakeApiServer::Last::kHang);
  Watched watched(api.url(), std::chrono::milliseconds(500));
  ASSERT_TRUE(watched.informer.List());
  const auto started = std::chrono::steady_clock::now();
  watched.informer.Start(true);
  EXPECT_TRUE(watched.observed.WaitFor([&] {
    return std::any_of(
        watched.observed.failures.begin(), watched.observed.failures.end(),
        [](const std::string& f) {
          return f.find("no answer within 500 ms") != std::string::npos;
        });
  }));
  EXPECT_LT(std::chrono::steady_clock::now() - started,
            std::chrono::seconds(5));
  watched.informer.Stop();
}

// A watch the server does not end at its timeoutSeconds (a proxy trickling
// bytes, or holding the stream) is dropped and watched again, from the same
// resourceVersion, instead of being trusted for minutes.
TEST(Informer, WatchOpenPastTheServerTimeoutIsDroppedAndResumed) {
  // Every watch held open, silent.
  FakeApiServer api(std::vector<std::vector<std::string>>(1));
  Watched watched(api.url(), std::chrono::milliseconds(500),
                  std::chrono::seconds(1));
  ASSERT_TRUE(watched.informer.List());
  watched.informer.Start(true);
  EXPECT_TRUE(watched.observed.WaitFor([&] {
    return std::any_of(watched.observed.failures.begin(),
                       watched.observed.failures.end(),
                       [](const std::string& f) {
                         return f.find("hung or too slow") != std::string::npos;
                       });
  }));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (api.watches() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(api.watches(), 2U);
  watched.informer.Stop();
  EXPECT_EQ(api.lists(), 2);  // the two pages of the first list: resumed
}

// Every watch accepted, then cut after a second (an idle-timeout load
// balancer). Each cut is reported, but the server works: the watch resumes
// after the first backoff step every time. The backoff used to keep growing
// (up to 10 s), so changes waited longer and longer.
TEST(Informer, WatchCutAfterASecondResumesWithoutGrowingTheBackoff) {
  FakeApiServer api({}, FakeApiServer::Last::kCut);
  Watched watched(api.url());
  ASSERT_TRUE(watched.informer.List());
  watched.informer.Start(true);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (api.watches() < 6 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  watched.informer.Stop();
  const auto starts = api.watch_starts();
  ASSERT_GE(starts.size(), 6U);
  // 1.1 s of watch, then at most 250 ms of backoff (plus slack); a growing
  // backoff makes the fourth gap at least 1.1 + 1 s.
  for (size_t i = 1; i < 6; ++i) {
    EXPECT_LT(starts[i] - starts[i - 1], std::chrono::milliseconds(1800))
        << "gap before watch " << i;
  }
  EXPECT_TRUE(AnyFailureContains(&watched.observed, "watch /api/v1/services"));
  EXPECT_EQ(api.lists(), 2);  // the two pages of the first list: resumed
}

// A well-formed event without resourceVersion is not from a real API
// server: taking it served an endpoint the server never had, and the next
// watch would have started from "now", missing deletions.
TEST(Informer, EventWithoutResourceVersionIsMalformed) {
  FakeApiServer api(
      {{R"({"type":"ADDED","object":{"metadata":{"name":"phantom","namespace":"default"},"spec":{"ports":[{"port":1}]}}})"},
       {}});
  Watched watched(api.url());
  Observed& observed = watched.observed;
  ASSERT_TRUE(watched.informer.List());
  watched.informer.Start(true);
  EXPECT_TRUE(observed.WaitFor(
      [&] { return observed.store.contains("default/relisted"); }));
  watched.informer.Stop();
  std::lock_guard lock(observed.mu);
  EXPECT_FALSE(observed.store.contains("default/phantom"));
  ASSERT_FALSE(observed.failures.empty());
  EXPECT_NE(observed.failures[0].find("no metadata.resourceVersion"),
            std::string::npos);
}

// A line that never ends must not take all memory: the stream is dropped
// after 16 MiB and the watch resumed from the same resourceVersion.
TEST(Informer, EndlessLineIsCutAndTheWatchResumed) {
  FakeApiServer api({{std::string(size_t{17} << 20U, 'x')}, {}});
  Watched watched(api.url());
  ASSERT_TRUE(watched.informer.List());
  watched.informer.Start(true);
  EXPECT_TRUE(watched.observed.WaitFor([&] {
    return std::any_of(
        watched.observed.failures.begin(), watched.observed.failures.end(),
        [](const std::string& f) {
          return f.find("a line longer than 16 MiB") != std::string::npos;
        });
  }));
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (api.watches() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  watched.informer.Stop();
  EXPECT_GE(api.watches(), 2U);
  EXPECT_EQ(api.lists(), 2);  // the two pages of the first list: resumed
}

TEST(Informer, UnreachableServerFailsTheListWithoutThrowing) {
  Watched watched("http://127.0.0.1:1");
  Observed& observed = watched.observed;
  Informer<KubeService>& informer = watched.informer;
  EXPECT_FALSE(informer.List());
  std::lock_guard lock(observed.mu);
  ASSERT_EQ(observed.failures.size(), 1U);
  EXPECT_NE(observed.failures[0].find("list /api/v1/services"),
            std::string::npos);
}

}  // namespace
}  // namespace attache
