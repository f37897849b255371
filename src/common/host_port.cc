#include "common/host_port.h"

#include <arpa/inet.h>

#include <charconv>

#include "common/strings.h"

namespace epp {

std::string JoinHostPort(std::string_view host, uint16_t port) {
  if (host.find(':') != std::string_view::npos) return StrCat("[", host, "]:", port);
  return StrCat(host, ":", port);
}

absl::StatusOr<HostPort> SplitHostPort(std::string_view text) {
  HostPort out;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(StrCat("invalid host:port \"", text, "\""));
    }
    out.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      return absl::InvalidArgumentError(StrCat("invalid host:port \"", text, "\""));
    }
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (out.host.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
      port == 0 || port > 65535) {
    return absl::InvalidArgumentError(StrCat("invalid host:port \"", text, "\""));
  }
  out.port = static_cast<uint16_t>(port);
  return out;
}

bool IsIpLiteral(std::string_view host) {
  std::string h(host);
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

std::string_view HostOf(std::string_view host_port) {
  if (!host_port.empty() && host_port.front() == '[') {
    size_t close = host_port.find(']');
    if (close != std::string_view::npos) return host_port.substr(1, close - 1);
    return host_port;
  }
  size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos || host_port.find(':') != colon) return host_port;
  return host_port.substr(0, colon);
}

}  // namespace epp
