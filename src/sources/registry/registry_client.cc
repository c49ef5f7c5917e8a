#include "sources/registry/registry_client.h"

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace attache {
namespace {

// Enough for tens of thousands of hosts; beyond that something is wrong and
// memory must not grow without bound.
constexpr size_t kMaxBody = size_t{64} << 20;
constexpr int kPollMillis = 1000;

std::string WithoutUserInfo(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) {
    return url;
  }
  const size_t host = scheme + 3;
  const size_t path = url.find_first_of("/?#", host);
  const std::string authority =
      url.substr(host, path == std::string::npos ? path : path - host);
  const size_t at = authority.rfind('@');
  if (at == std::string::npos) {
    return url;
  }
  return url.substr(0, host) + url.substr(host + at + 1);
}

std::string Escaped(CURL* easy, const std::string& text) {
  char* escaped =
      curl_easy_escape(easy, text.c_str(), static_cast<int>(text.size()));
  if (escaped == nullptr) {
    throw std::bad_alloc();
  }
  std::string result(escaped);
  curl_free(escaped);
  return result;
}

size_t Collect(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t bytes = size * count;
  if (body->size() + bytes > kMaxBody) {
    return 0;  // makes curl fail the transfer with CURLE_WRITE_ERROR
  }
  body->append(data, bytes);
  return bytes;
}

}  // namespace

struct RegistryClient::Transfer {
  size_t index = 0;
  std::string body;
  std::array<char, CURL_ERROR_SIZE> error{};
};

RegistryClient::RegistryClient(std::string base_url,
                               std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)),
      display_url_(WithoutUserInfo(base_url_)),
      timeout_(timeout),
      multi_([] {
        static std::once_flag curl_ready;
        std::call_once(curl_ready,
                       [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        return curl_multi_init();
      }()) {
  if (multi_ == nullptr) {
    throw std::runtime_error("curl_multi_init failed");
  }
  headers_ = curl_slist_append(headers_, "Accept: application/json");
}

RegistryClient::~RegistryClient() {
  curl_multi_cleanup(multi_);
  curl_slist_free_all(headers_);
}

void RegistryClient::Cancel() {
  cancelled_ = true;
  curl_multi_wakeup(multi_);
}

CURL* RegistryClient::Begin(const std::string& service,
                            Transfer& transfer) const {
  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    return nullptr;
  }
  const std::string url =
      base_url_ + "/v1/registration/" + Escaped(easy, service);
  const long millis = static_cast<long>(timeout_.count());
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "attache/" ATTACHE_VERSION);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, millis);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, millis);
  // Worker threads must never get SIGALRM from curl's resolver timeouts.
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  // The registry is reached directly: an http_proxy meant for other tools
  // must not reroute (or break) service discovery.
  curl_easy_setopt(easy, CURLOPT_PROXY, "");
  curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.error.data());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer.body);
  return easy;
}

std::vector<RegistryFetch> RegistryClient::FetchAll(
    const std::vector<std::string>& services, size_t give_up_after) {
  std::vector<RegistryFetch> results(services.size());
  std::map<CURL*, std::unique_ptr<Transfer>> in_flight;
  size_t next = 0;
  // Requests in a row that the registry did not answer at all; any HTTP
  // answer, even an error status, shows that it is there.
  size_t unanswered = 0;

  const auto finish = [&](CURL* easy, CURLcode code) {
    const auto found = in_flight.find(easy);
    Transfer& transfer = *found->second;
    RegistryFetch& result = results[transfer.index];
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    const bool answered = code == CURLE_OK || code == CURLE_WRITE_ERROR ||
                          code == CURLE_PARTIAL_FILE ||
                          code == CURLE_BAD_CONTENT_ENCODING;
    unanswered = answered ? 0 : unanswered + 1;
    if (code == CURLE_WRITE_ERROR) {
      result.error = "the answer is larger than " +
                     std::to_string(kMaxBody >> 20) + " MiB";
    } else if (code != CURLE_OK) {
      result.error = transfer.error[0] != '\0' ? transfer.error.data()
                                               : curl_easy_strerror(code);
    } else if (status >= 300 && status < 400) {
      result.error =
          "HTTP " + std::to_string(status) + " (redirects are not followed)";
    } else if (status < 200 || status >= 300) {
      result.error = "HTTP " + std::to_string(status);
    } else {
      result.body = std::move(transfer.body);
    }
    curl_multi_remove_handle(multi_, easy);
    curl_easy_cleanup(easy);
    in_flight.erase(found);
  };

  for (;;) {
    if (cancelled_) {
      while (!in_flight.empty()) {
        finish(in_flight.begin()->first, CURLE_ABORTED_BY_CALLBACK);
      }
      // Half a round is no answer: whoever cancels ignores it anyway.
      for (RegistryFetch& result : results) {
        result.error = "cancelled";
      }
      return results;
    }
    const bool giving_up = give_up_after > 0 && unanswered >= give_up_after;
    if (giving_up && in_flight.empty()) {
      for (; next < services.size(); ++next) {
        results[next].error = "not asked: the registry did not answer the " +
                              std::to_string(unanswered) +
                              " requests before it";
      }
      return results;
    }
    // After a silence no new request starts until an answer or an empty
    // pipe: refilling each slot as its twin timed out a moment apart sent
    // 2 * kParallel - 1 requests to a dead registry instead of kParallel.
    const bool waiting_for_an_answer =
        give_up_after > 0 && unanswered > 0 && !in_flight.empty();
    while (!giving_up && !waiting_for_an_answer && next < services.size() &&
           in_flight.size() < kParallel) {
      auto transfer = std::make_unique<Transfer>();
      transfer->index = next;
      CURL* easy = Begin(services[next], *transfer);
      if (easy == nullptr) {
        results[next++].error = "cannot start a transfer (out of memory?)";
        continue;
      }
      curl_multi_add_handle(multi_, easy);
      in_flight.emplace(easy, std::move(transfer));
      ++next;
    }
    if (in_flight.empty()) {
      return results;
    }
    int running = 0;
    curl_multi_perform(multi_, &running);
    bool finished_some = false;
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_, &queued)) {
      if (message->msg == CURLMSG_DONE) {
        finish(message->easy_handle, message->data.result);
        finished_some = true;
      }
    }
    // A free slot is filled at once rather than after the next poll.
    if (!finished_some) {
      curl_multi_poll(multi_, nullptr, 0, kPollMillis, nullptr);
    }
  }
}

}  // namespace attache
