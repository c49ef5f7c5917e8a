// A proxyless gRPC xDS client on Debian's grpc++ (1.51), used by the e2e tests.
//
// usage: grpc_xds_client TARGET COUNT [INTERVAL_MS] [MAX_SECONDS]
//
// Dials TARGET (for example xds:///echo; GRPC_XDS_BOOTSTRAP names the bootstrap
// file) and calls /attache.test.Echo/Hello COUNT times (0: until SIGTERM or
// MAX_SECONDS, default 120), INTERVAL_MS apart (default 10). Each call sends a
// few raw bytes (no .proto) and prints one line: the reply (the answering
// server's name) or "ERROR <code> <message>".
//
// With TARGET "-", each line read from stdin names one more target to dial,
// each on a channel of its own, all in this one process: grpc++ 1.51 keeps one
// XdsClient, so one ADS stream, for all of them. Every line printed then
// starts with the target it is about ("<target> <reply>"), and COUNT applies
// to each target.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int) { g_stop.store(true); }

constexpr const char* kMethod = "/attache.test.Echo/Hello";

std::string to_string(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return "<undecodable reply>";
  std::string out;
  for (const auto& slice : slices) {
    out.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return out;
}

std::string one_line(std::string text) {
  for (auto& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

// One unary call with raw bytes, through a completion queue.
std::string call_once(grpc::GenericStub& stub, grpc::CompletionQueue& cq) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  const std::string payload = "hello";
  grpc::Slice slice(payload);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  auto reader = stub.PrepareUnaryCall(&context, kMethod, request, &cq);
  if (!reader) return "ERROR INTERNAL could not prepare the call";
  reader->StartCall();
  int tag = 1;
  reader->Finish(&response, &status, &tag);
  void* got_tag = nullptr;
  bool ok = false;
  if (!cq.Next(&got_tag, &ok) || got_tag != &tag) {
    return "ERROR INTERNAL completion queue failed";
  }
  if (!status.ok()) {
    return "ERROR " + std::to_string(static_cast<int>(status.error_code())) +
           " " + one_line(status.error_message());
  }
  return to_string(response);
}

std::mutex g_out_mu;  // one line at a time from the channels' threads

// Calls `target` until stopped, COUNT times or past the deadline; each line is
// prefixed with `prefix`.
void dial(const std::string& target, const std::string& prefix, long count,
          long interval_ms, std::chrono::steady_clock::time_point deadline) {
  auto channel =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  for (long done = 0; !g_stop.load() && (count == 0 || done < count) &&
                      std::chrono::steady_clock::now() < deadline;
       ++done) {
    const std::string line = prefix + call_once(stub, cq);
    {
      std::lock_guard lock(g_out_mu);
      std::cout << line << std::endl;  // endl flushes: one line per call
    }
    if (interval_ms > 0) {
      // Pacing between calls, not synchronisation.
      std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
    }
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

// TARGET "-": a channel per target named on stdin, until stopped.
int dial_from_stdin(long count, long interval_ms,
                    std::chrono::steady_clock::time_point deadline) {
  std::mutex mu;
  std::vector<std::thread> channels;
  bool closing = false;
  // Detached: it may be blocked in a read when the process ends.
  std::thread([&] {
    std::string target;
    while (std::getline(std::cin, target)) {
      if (target.empty()) continue;
      std::lock_guard lock(mu);
      if (closing) return;
      channels.emplace_back(dial, target, target + " ", count, interval_ms,
                            deadline);
    }
  }).detach();
  while (!g_stop.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mu);
    closing = true;
    done.swap(channels);
  }
  for (auto& channel : done) channel.join();
  // The reader thread still refers to this frame's locals: end here.
  std::cout.flush();
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0]
              << " TARGET COUNT [INTERVAL_MS] [MAX_SECONDS]\n";
    return 2;
  }
  const std::string target = argv[1];
  const long count = std::strtol(argv[2], nullptr, 10);
  const long interval_ms = argc > 3 ? std::strtol(argv[3], nullptr, 10) : 10;
  const long max_seconds = argc > 4 ? std::strtol(argv[4], nullptr, 10) : 120;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
  if (target == "-") {
    return dial_from_stdin(count, interval_ms, deadline);
  }
  dial(target, "", count, interval_ms, deadline);
  return 0;
}
