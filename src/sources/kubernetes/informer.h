#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "sources/kubernetes/backoff.h"
#include "sources/kubernetes/kube_client.h"
#include "sources/kubernetes/kube_objects.h"

namespace attache {

// List and watch one kind of object at one API path, with informer
// semantics: a paginated list, then a watch from its resourceVersion with
// bookmarks; a 410 (expired resourceVersion) means a fresh list; failures
// retry with backoff and jitter; a watch silent for too long is dropped and
// resumed. After every change the store is handed out with what changed:
// one key after a watch event, everything (null) after a list.
template <typename Object>
class Informer {
 public:
  using Store = std::map<std::string, Object>;
  using ListDecoder = std::function<std::optional<KubeList<Object>>(
      std::string_view, std::string*)>;
  using EventDecoder = std::function<std::optional<KubeWatchEvent<Object>>(
      std::string_view, std::string*)>;

  struct Callbacks {
    // After a list (key null) or an event (the key it added, modified or
    // deleted). Called on the informer's thread; keep it short.
    std::function<void(const Store&, const std::string* key)> changed;
    std::function<void(const std::string&)> failed;  // worded for a log line
  };

  Informer(KubeClient* client, std::string path, std::string selector,
           std::chrono::milliseconds watch_timeout, ListDecoder decode_list,
           EventDecoder decode_event, Callbacks callbacks)
      : client_(client),
        path_(std::move(path)),
        selector_(std::move(selector)),
        watch_timeout_(watch_timeout),
        decode_list_(std::move(decode_list)),
        decode_event_(std::move(decode_event)),
        callbacks_(std::move(callbacks)) {}

  ~Informer() { Stop(); }
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // One list, synchronously. False (and `failed` called) when it fails.
  bool List() {
    Store store;
    std::string continue_token;
    std::string resource_version;
    const auto started = std::chrono::steady_clock::now();
    auto reported = started;
    do {
      std::string query = "?limit=500";
      if (!selector_.empty()) query += "&labelSelector=" + selector_;
      if (!continue_token.empty()) query += "&continue=" + continue_token;
      const HttpResult result = client_->Get(path_ + query);
      if (!result.ok()) {
        Fail("list " + path_ + ": " + Describe(result));
        return false;
      }
      std::string error;
      auto page = decode_list_(result.body, &error);
      if (!page) {
        Fail("list " + path_ + ": " + error);
        return false;
      }
      for (auto& item : page->items) {
        std::string key = KeyOf(item);
        store.emplace(std::move(key), std::move(item));
      }
      continue_token = page->continue_token;
      resource_version = page->resource_version;
      // A long list says how far it got, every few seconds.
      const auto now = std::chrono::steady_clock::now();
      if (!continue_token.empty() && now - reported > std::chrono::seconds(5)) {
        reported = now;
        spdlog::info(
            "kubernetes {}{}: listing, {} objects so far in {} s",
            client_->server(), path_, store.size(),
            std::chrono::duration_cast<std::chrono::seconds>(now - started)
                .count());
      }
    } while (!continue_token.empty());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    spdlog::info("kubernetes {}{}: listed {} objects in {} ms",
                 client_->server(), path_, store.size(), took.count());
    resource_version_ = resource_version;
    store_ = std::move(store);
    degraded_ = false;
    callbacks_.changed(store_, nullptr);
    return true;
  }

  void Start(bool listed) {
    needs_list_ = !listed;
    thread_ = std::thread([this] { Run(); });
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

 private:
  static std::string Describe(const HttpResult& result) {
    if (!result.error.empty()) return result.error;
    return "HTTP " + std::to_string(result.status);
  }

  void Fail(const std::string& message) {
    degraded_ = true;
    callbacks_.failed(message);
  }

  bool Stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  // Sleeps for the next backoff step; false when stopping.
  bool Wait(Backoff* backoff) {
    std::unique_lock lock(mu_);
    return !wake_.wait_for(lock, backoff->Next(), [this] { return stopping_; });
  }

  void Run() {
    Backoff backoff(std::chrono::milliseconds(250), std::chrono::seconds(10));
    while (!Stopping()) {
      if (needs_list_) {
        if (!List()) {
          if (!Wait(&backoff)) return;
          continue;
        }
        needs_list_ = false;
        fresh_list_ = true;
        // No backoff.Reset() here: a list that works while every watch
        // after it fails (410 again, malformed events) must not make the
        // loop spin. Only a watch that held resets it.
      }
      const WatchEnd end = Watch();
      if (end.held) {
        backoff.Reset();
      }
      if (end.outcome == WatchOutcome::kFailed ||
          (end.outcome != WatchOutcome::kExpired && !end.held)) {
        // Failed, or ended cleanly at once with nothing said: a server
        // closing every watch at once must not be hammered either.
        if (!Wait(&backoff)) return;
      }
    }
  }

  enum class WatchOutcome { kEnded, kExpired, kFailed };
  struct WatchEnd {
    WatchOutcome outcome = WatchOutcome::kEnded;
    // The server accepted the watch and it delivered an event or stayed
    // open for kHealthyWatch: the server works, the next failure starts
    // the backoff over.
    bool held = false;
  };
  static constexpr std::chrono::seconds kHealthyWatch{1};

  // One watch until the server ends it.
  WatchEnd Watch() {
    const auto timeout_seconds =
        std::chrono::duration_cast<std::chrono::seconds>(watch_timeout_);
    std::string query =
        "?watch=true&allowWatchBookmarks=true&resourceVersion=" +
        resource_version_ +
        "&timeoutSeconds=" + std::to_string(timeout_seconds.count());
    if (!selector_.empty()) query += "&labelSelector=" + selector_;
    std::string problem;
    const bool from_fresh_list = fresh_list_;
    fresh_list_ = false;
    watch_events_ = 0;
    const auto on_line = [this, &problem](std::string_view line) {
      return OnEvent(line, &problem);
    };
    // The server accepting the watch is being back in touch, even if it has
    // nothing to say for a minute.
    bool accepted = false;
    std::chrono::steady_clock::time_point accepted_at;
    const auto on_accepted = [this, &accepted, &accepted_at] {
      accepted = true;
      accepted_at = std::chrono::steady_clock::now();
      if (degraded_) {
        degraded_ = false;
        callbacks_.changed(store_, nullptr);
      }
    };
    // Bookmarks arrive about once a minute; twice that in silence is a hang.
    // The server ends the watch after timeoutSeconds: a stream still open
    // well past that (bytes trickling in) is not a working watch either.
    const auto max_duration =
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout_seconds) +
        client_->request_timeout();
    const HttpResult result =
        client_->Stream(path_ + query, std::chrono::seconds(150), max_duration,
                        on_line, on_accepted, [this] { return Stopping(); });
    WatchEnd end;
    end.held = accepted && (watch_events_ > 0 ||
                            std::chrono::steady_clock::now() - accepted_at >=
                                kHealthyWatch);
    if (!problem.empty()) {
      Fail("watch " + path_ + ": " + problem);
      end.outcome = WatchOutcome::kFailed;
      return end;
    }
    if (result.status == 410 || expired_) {
      expired_ = false;
      needs_list_ = true;
      end.outcome = WatchOutcome::kExpired;
      if (from_fresh_list && !end.held) {
        // The resourceVersion of a list made a moment ago cannot have
        // expired: the server is broken (or restarting). Listing again at
        // once would hammer it in a loop; wait first, and say so.
        Fail("watch " + path_ +
             ": resourceVersion expired (410) again right after a list; "
             "listing again after a backoff");
        end.outcome = WatchOutcome::kFailed;
      } else {
        spdlog::info("kubernetes {}{}: resourceVersion expired, listing again",
                     client_->server(), path_);
      }
      return end;
    }
    if (!result.ok() && !Stopping()) {
      Fail("watch " + path_ + ": " + Describe(result));
      end.outcome = WatchOutcome::kFailed;
    }
    return end;
  }

  // False stops the stream.
  bool OnEvent(std::string_view line, std::string* problem) {
    if (line.empty()) return true;
    std::string error;
    auto event = decode_event_(line, &error);
    if (!event) {
      // A malformed event: drop this watch and list afresh rather than
      // guess what the store should hold.
      *problem = "malformed event (" + error + "); listing again";
      needs_list_ = true;
      return false;
    }
    using Type = typename KubeWatchEvent<Object>::Type;
    if (event->type != Type::kError && event->resource_version.empty()) {
      // Every real event carries one. Taking it would make the next watch
      // start from "now": deletions in between would never arrive, and the
      // object itself (whatever it is) would stay in the store.
      *problem = "malformed event (no metadata.resourceVersion); listing again";
      needs_list_ = true;
      return false;
    }
    switch (event->type) {
      case Type::kError:
        if (event->error_code == 410) {
          expired_ = true;
        } else {
          *problem = "watch error " + std::to_string(event->error_code) + ": " +
                     event->error_message;
        }
        return false;
      case Type::kBookmark:
        resource_version_ = event->resource_version;
        ++watch_events_;
        return true;
      case Type::kAdded:
      case Type::kModified:
      case Type::kDeleted:
        break;
    }
    resource_version_ = event->resource_version;
    ++watch_events_;
    const std::string key = KeyOf(*event->object);
    if (event->type == Type::kDeleted) {
      store_.erase(key);
    } else {
      store_[key] = std::move(*event->object);
    }
    callbacks_.changed(store_, &key);
    return true;
  }

  KubeClient* const client_;
  const std::string path_;
  const std::string selector_;  // URL-encoded
  const std::chrono::milliseconds watch_timeout_;
  const ListDecoder decode_list_;
  const EventDecoder decode_event_;
  const Callbacks callbacks_;

  // Touched only by List() before Start and then by the informer thread.
  Store store_;
  std::string resource_version_;
  bool needs_list_ = true;
  bool fresh_list_ = false;  // no watch since the last list
  bool expired_ = false;     // the current watch got an ERROR 410 event
  size_t watch_events_ = 0;  // events and bookmarks in the current watch
  bool degraded_ = false;    // a failure was reported and not yet recovered

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace attache
