// Address helpers: `ip:port` formatting with IPv6 brackets, and parsing of host:port lists as
// they appear in destination headers and subset hints.
#ifndef EPP_COMMON_HOST_PORT_H_
#define EPP_COMMON_HOST_PORT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace epp {

// Formats "host:port", bracketing hosts that contain ':' (IPv6): "[::1]:8000".
std::string JoinHostPort(std::string_view host, uint16_t port);

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
};

// Parses "host:port" or "[v6]:port". Errors name the offending text.
absl::StatusOr<HostPort> SplitHostPort(std::string_view text);

// True when `host` is a numeric IPv4 or IPv6 literal (no brackets).
bool IsIpLiteral(std::string_view host);

// Returns the host part of "host:port" / "[v6]:port" without brackets; the whole text when it
// has no port.
std::string_view HostOf(std::string_view host_port);

}  // namespace epp

#endif  // EPP_COMMON_HOST_PORT_H_
