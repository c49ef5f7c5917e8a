#include "sources/kubernetes/kube_client.h"

#include <curl/curl.h>

#include <mutex>

namespace attache {
namespace {

// The longest line a stream may send. The API server refuses objects over
// ~3 MB, so a watch event is far shorter.
constexpr size_t kMaxLine = size_t{16} << 20U;

struct Transfer {
  std::string body;     // Get: the whole answer
  std::string partial;  // Stream: bytes after the last newline
  const std::function<bool(std::string_view)>* on_line = nullptr;
  const std::function<void()>* on_accepted = nullptr;
  const std::function<bool()>* stopped = nullptr;
  CURL* curl = nullptr;
  bool stopped_by_reader = false;
  // Stream: the server must answer (status and headers) by this time.
  std::chrono::steady_clock::time_point answer_deadline =
      std::chrono::steady_clock::time_point::max();
  bool answered = false;
  bool no_answer = false;      // aborted at answer_deadline
  bool line_too_long = false;  // aborted: a line longer than kMaxLine
};

size_t OnData(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  if (transfer->on_line == nullptr) {
    transfer->body.append(data, bytes);
    return bytes;
  }
  transfer->partial.append(data, bytes);
  size_t start = 0;
  for (size_t end = transfer->partial.find('\n'); end != std::string::npos;
       end = transfer->partial.find('\n', start)) {
    if (!(*transfer->on_line)(
            std::string_view(transfer->partial).substr(start, end - start))) {
      transfer->stopped_by_reader = true;
      return 0;  // makes curl abort the transfer
    }
    start = end + 1;
  }
  transfer->partial.erase(0, start);
  if (transfer->partial.size() > kMaxLine) {
    // No real watch event comes near this (objects are at most a few MiB):
    // a server sending an endless line must not take all our memory.
    transfer->line_too_long = true;
    return 0;
  }
  return bytes;
}

// Called per header line; the empty line ends the headers.
size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  const std::string_view line(data, bytes);
  if (line == "\r\n" || line == "\n") {
    transfer->answered = true;
  }
  if ((line == "\r\n" || line == "\n") && transfer->on_accepted != nullptr) {
    long status = 0;
    curl_easy_getinfo(transfer->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) {
      (*transfer->on_accepted)();
    }
  }
  return bytes;
}

// "https://host:port" -> {host, port}; the port defaults to 443.
std::pair<std::string, std::string> HostAndPort(const std::string& server) {
  std::string rest = server.substr(server.find("://") + 3);
  std::string port = "443";
  const auto colon = rest.rfind(':');
  if (colon != std::string::npos &&
      rest.find(']', colon) == std::string::npos) {
    port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  return {rest, port};
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* transfer = static_cast<Transfer*>(user);
  if (!transfer->answered &&
      std::chrono::steady_clock::now() > transfer->answer_deadline) {
    // A server that accepts the connection and never answers: without this
    // only the idle limit (minutes) would end the wait.
    transfer->no_answer = true;
    return 1;
  }
  return transfer->stopped != nullptr && (*transfer->stopped)() ? 1 : 0;
}

void SetBlob(CURL* curl, CURLoption option, const std::string& pem) {
  curl_blob blob{};
  blob.data = const_cast<char*>(pem.data());  // curl copies it
  blob.len = pem.size();
  blob.flags = CURL_BLOB_COPY;
  curl_easy_setopt(curl, option, &blob);
}

}  // namespace

KubeClient::KubeClient(const ClusterAccess& access,
                       std::chrono::milliseconds request_timeout)
    : access_(access), request_timeout_(request_timeout), tokens_(access) {
  static std::once_flag curl_ready;
  std::call_once(curl_ready, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpResult KubeClient::Get(const std::string& path) {
  return Perform(path, false, std::chrono::seconds(0),
                 std::chrono::milliseconds(0), nullptr, nullptr, nullptr);
}

HttpResult KubeClient::Stream(
    const std::string& path, std::chrono::seconds idle_limit,
    std::chrono::milliseconds max_duration,
    const std::function<bool(std::string_view)>& on_line,
    const std::function<void()>& on_accepted,
    const std::function<bool()>& stopped) {
  return Perform(path, true, idle_limit, max_duration, &on_line, &on_accepted,
                 &stopped);
}

HttpResult KubeClient::Perform(
    const std::string& path, bool streaming, std::chrono::seconds idle_limit,
    std::chrono::milliseconds max_duration,
    const std::function<bool(std::string_view)>* on_line,
    const std::function<void()>* on_accepted,
    const std::function<bool()>* stopped) {
  HttpResult result;
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(
        curl_easy_init(), &curl_easy_cleanup);
    if (!curl) {
      result.error = "cannot create a curl handle";
      return result;
    }
    CURL* h = curl.get();
    Transfer transfer;
    transfer.on_line = on_line;
    transfer.on_accepted = on_accepted;
    transfer.stopped = stopped;
    transfer.curl = h;
    std::string url = access_.server + path;
    curl_slist* connect_to = nullptr;
    if (!access_.tls_server_name.empty()) {
      // Verify (and send SNI for) the name the certificate was issued to,
      // while connecting to the address in `server`.
      const auto [host, port] = HostAndPort(access_.server);
      url = "https://" + access_.tls_server_name + ":" + port + path;
      const std::string rule =
          access_.tls_server_name + ":" + port + ":" + host + ":" + port;
      connect_to = curl_slist_append(nullptr, rule.c_str());
      curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to);
    }
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(request_timeout_.count()));
    if (streaming) {
      // The server ends watches itself; a stream that goes silent for
      // idle_limit, or outlives max_duration, is taken for hung.
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                       static_cast<long>(idle_limit.count()));
      if (max_duration.count() > 0) {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                         static_cast<long>(max_duration.count()));
      }
      transfer.answer_deadline =
          std::chrono::steady_clock::now() + request_timeout_;
      curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &OnProgress);
      curl_easy_setopt(h, CURLOPT_XFERINFODATA, &transfer);
    } else {
      curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(request_timeout_.count()));
    }
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnData);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
    if (!access_.ca_pem.empty()) {
      SetBlob(h, CURLOPT_CAINFO_BLOB, access_.ca_pem);
    }
    if (access_.insecure_skip_tls_verify) {
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!access_.client_cert_pem.empty()) {
      SetBlob(h, CURLOPT_SSLCERT_BLOB, access_.client_cert_pem);
      SetBlob(h, CURLOPT_SSLKEY_BLOB, access_.client_key_pem);
      curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    }
    curl_slist* headers =
        curl_slist_append(nullptr, "Accept: application/json");
    std::string authorization;
    try {
      const std::string token = tokens_.Token();
      if (!token.empty()) {
        authorization = "Authorization: Bearer " + token;
        headers = curl_slist_append(headers, authorization.c_str());
      }
    } catch (const std::exception& error) {
      curl_slist_free_all(headers);
      curl_slist_free_all(connect_to);
      result.error = error.what();
      return result;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    const CURLcode code = curl_easy_perform(h);
    curl_slist_free_all(headers);
    curl_slist_free_all(connect_to);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
    result.body = std::move(transfer.body);
    result.error.clear();
    if (transfer.line_too_long) {
      result.error = "a line longer than " + std::to_string(kMaxLine >> 20U) +
                     " MiB; dropped the stream";
    } else if (transfer.no_answer) {
      result.error = "no answer within " +
                     std::to_string(request_timeout_.count()) +
                     " ms (request_timeout)";
    } else if (code != CURLE_OK && !transfer.stopped_by_reader &&
               !(stopped != nullptr && (*stopped)())) {
      result.error = std::string(curl_easy_strerror(code));
      if (code == CURLE_OPERATION_TIMEDOUT && streaming) {
        result.error += " (a hung or too slow API server)";
      }
    }
    if (result.status == 401 && attempt == 0) {
      tokens_.Invalidate();  // a rotated or expired token: fetch it anew
      continue;
    }
    break;
  }
  return result;
}

}  // namespace attache
