#pragma once

#include <string>

namespace attache {

// True for an IPv4 or IPv6 literal (no host names, no brackets).
bool IsIpLiteral(const std::string& text);

}  // namespace attache
