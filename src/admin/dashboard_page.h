#pragma once

#include <string_view>

namespace attache {

// The live dashboard served at `/` on the admin port: one self-contained
// HTML page (inline CSS and JS, nothing fetched from elsewhere) that polls
// /debug/catalog, /debug/sources and /debug/clients every second and shows
// services x sources, the sources' state and the clients' sync status.
std::string_view DashboardPage();

}  // namespace attache
