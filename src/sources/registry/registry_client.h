#pragma once

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace attache {

struct RegistryFetch {
  std::string body;   // the answer, when error is empty
  std::string error;  // why there is no usable answer, e.g. "HTTP 500"

  bool ok() const { return error.empty(); }
};

// Fetches registrations from one registry over HTTP(S). Every transfer
// honours the timeout as a whole and for the connection, goes through no
// proxy (whatever the environment says) and follows no redirect.
// FetchAll is for one thread at a time; Cancel is for any thread.
class RegistryClient {
 public:
  RegistryClient(std::string base_url, std::chrono::milliseconds timeout);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // GET <base_url>/v1/registration/<service> for each service, a few at a
  // time; one result per service, in the same order. With give_up_after > 0,
  // once that many requests in a row got no answer at all (timeout, refused
  // connection), the services not asked yet are not asked and fail: a dead
  // registry then costs one timeout, not one per few services.
  std::vector<RegistryFetch> FetchAll(const std::vector<std::string>& services,
                                      size_t give_up_after = 0);

  // Requests in flight at once. A legacy registry is often a small Python
  // service: a few at a time keep a round short without hammering it.
  static constexpr size_t kParallel = 4;

  // Ends a FetchAll in progress at once, and fails every later one: used to
  // stop without waiting for a slow registry.
  void Cancel();

  // The base URL without user info, for messages: credentials that an
  // operator put in the URL must not end up in logs.
  const std::string& display_url() const { return display_url_; }

 private:
  struct Transfer;
  // nullptr when curl cannot allocate a transfer.
  CURL* Begin(const std::string& service, Transfer& transfer) const;

  const std::string base_url_;
  const std::string display_url_;
  const std::chrono::milliseconds timeout_;
  CURLM* const multi_;  // keeps connections open from one round to the next
  curl_slist* headers_ = nullptr;
  std::atomic<bool> cancelled_{false};
};

}  // namespace attache
