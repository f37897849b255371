// Go duration strings ("200ms", "1.5s", "5m", "1h30m") as the reference's plugin parameters and
// flags take them (time.ParseDuration), for code below the app layer.
#ifndef EPP_COMMON_DURATION_H_
#define EPP_COMMON_DURATION_H_

#include <chrono>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"

namespace epp {

// Parses a non-negative Go duration: one or more decimal numbers (optionally with a fraction),
// each followed by a unit ns, us, µs, ms, s, m or h; or "0" alone. Returns nullopt for anything
// else (no unit, unknown unit, spaces, a sign, more than about 292 years).
std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view s);

// ParseGoDuration for the plugin parameter `key`, which must be > 0; InvalidArgument naming the
// parameter otherwise.
absl::StatusOr<std::chrono::nanoseconds> ParsePositiveDurationParam(std::string_view key,
                                                                    std::string_view value);

}  // namespace epp

#endif  // EPP_COMMON_DURATION_H_
