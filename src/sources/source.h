#pragma once

#include <string>

namespace attache {

// An origin of endpoints. A source reports its whole state to the catalog on
// every change and keeps its last good state when its origin misbehaves.
class Source {
 public:
  virtual ~Source() = default;
  virtual const std::string& name() const = 0;
  // Checks what can be checked without contacting the origin (files,
  // kubeconfigs); throws ConfigError. Used by `attache validate`.
  virtual void Check() {}
  // Reports the first state synchronously. Throws ConfigError only for what
  // is wrong in the configuration (an unreadable host file or kubeconfig); an
  // origin that is merely unreachable is reported to the catalog instead.
  virtual void LoadInitial() = 0;
  // Follows changes in the background until Stop.
  virtual void Start() = 0;
  virtual void Stop() = 0;
};

}  // namespace attache
