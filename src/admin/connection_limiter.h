#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace attache {

// Which connections an HTTP listener takes: at most `max_total` open, and at
// most `max_per_peer` from one peer address, so that one prober or one
// slowloris host cannot hold every slot. Thread-safe; knows no sockets.
class ConnectionLimiter {
 public:
  enum class Verdict { kAdmit, kTooMany, kTooManyFromPeer };

  ConnectionLimiter(uint32_t max_total, uint32_t max_per_peer);

  // Whether a new connection from `peer` may open now.
  Verdict Check(const std::string& peer) const;
  void Opened(const std::string& peer);
  void Closed(const std::string& peer);

  uint32_t open() const;

 private:
  const uint32_t max_total_;
  const uint32_t max_per_peer_;
  mutable std::mutex mu_;
  uint32_t open_ = 0;
  std::map<std::string, uint32_t> per_peer_;
};

}  // namespace attache
