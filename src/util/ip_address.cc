#include "util/ip_address.h"

#include <arpa/inet.h>

namespace attache {

bool IsIpLiteral(const std::string& text) {
  // inet_pton stops at a NUL: "10.0.0.1\0anything" is not an address.
  if (text.find('\0') != std::string::npos) {
    return false;
  }
  unsigned char buffer[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

}  // namespace attache
