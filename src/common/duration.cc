#include "common/duration.h"

#include <cctype>
#include <charconv>
#include <utility>

#include "common/strings.h"

namespace epp {
namespace {

bool IsNumberChar(char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; }

}  // namespace

std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view s) {
  static constexpr std::pair<std::string_view, double> kUnitNanos[] = {
      {"ns", 1},   {"us", 1e3}, {"\xC2\xB5s", 1e3}, {"\xCE\xBCs", 1e3},
      {"ms", 1e6}, {"s", 1e9},  {"m", 60e9},        {"h", 3600e9}};
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return std::nullopt;
  double total = 0;
  while (!s.empty()) {
    size_t digits = 0;
    while (digits < s.size() && IsNumberChar(s[digits])) ++digits;
    if (digits == 0) return std::nullopt;
    double value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + digits, value);
    if (ec != std::errc() || end != s.data() + digits) return std::nullopt;
    s.remove_prefix(digits);
    size_t unit_len = 0;
    while (unit_len < s.size() && !IsNumberChar(s[unit_len])) ++unit_len;
    std::string_view unit = s.substr(0, unit_len);
    s.remove_prefix(unit_len);
    bool known = false;
    for (const auto& [name, nanos] : kUnitNanos) {
      if (unit == name) {
        total += value * nanos;
        known = true;
        break;
      }
    }
    if (!known) return std::nullopt;
  }
  // int64 nanoseconds hold about 292 years; Go refuses larger values too.
  if (total > 9.2e18) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<int64_t>(total));
}

absl::StatusOr<std::chrono::nanoseconds> ParsePositiveDurationParam(std::string_view key,
                                                                    std::string_view value) {
  auto d = ParseGoDuration(value);
  if (!d.has_value() || d->count() <= 0) {
    return absl::InvalidArgumentError(StrCat("parameter \"", key,
                                             "\" must be a positive Go duration such as \"200ms\"",
                                             " or \"5m\"; got \"", value, "\""));
  }
  return *d;
}

}  // namespace epp
