#include "util/ip_address.h"

#include <arpa/inet.h>

namespace attache {

bool IsIpLiteral(const std::string& text) {
  unsigned char buffer[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

}  // namespace attache
