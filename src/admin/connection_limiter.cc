#include "admin/connection_limiter.h"

namespace attache {

ConnectionLimiter::ConnectionLimiter(uint32_t max_total, uint32_t max_per_peer)
    : max_total_(max_total), max_per_peer_(max_per_peer) {}

ConnectionLimiter::Verdict ConnectionLimiter::Check(
    const std::string& peer) const {
  std::lock_guard lock(mu_);
  if (open_ >= max_total_) {
    return Verdict::kTooMany;
  }
  const auto it = per_peer_.find(peer);
  if (it != per_peer_.end() && it->second >= max_per_peer_) {
    return Verdict::kTooManyFromPeer;
  }
  return Verdict::kAdmit;
}

void ConnectionLimiter::Opened(const std::string& peer) {
  std::lock_guard lock(mu_);
  ++open_;
  ++per_peer_[peer];
}

void ConnectionLimiter::Closed(const std::string& peer) {
  std::lock_guard lock(mu_);
  const auto it = per_peer_.find(peer);
  if (it == per_peer_.end()) {
    return;  // never opened: nothing to give back
  }
  --open_;
  if (--it->second == 0) {
    per_peer_.erase(it);
  }
}

uint32_t ConnectionLimiter::open() const {
  std::lock_guard lock(mu_);
  return open_;
}

}  // namespace attache
