// A Prometheus text-exposition (format 0.0.4, and OpenMetrics-style exemplars) parser that
// extracts only the metric names the caller asks for and skips every other line by its name,
// without allocating. Comments (# HELP, # TYPE, anything after '#') are skipped.
//
// Wanted lines are parsed fully: label values with escapes (\\, \", \n), values in Go/Python
// float syntax including NaN, +Inf and -Inf, an optional integer timestamp (ms), and an
// optional exemplar (" # {...} value [ts]"), which is ignored. A malformed wanted line is an
// error naming the line number; nothing is reported for it. Lines of other families are not
// validated (that is what makes skipping cheap).
#ifndef EPP_DATALAYER_PROMETHEUS_TEXT_H_
#define EPP_DATALAYER_PROMETHEUS_TEXT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace epp::datalayer {

struct Sample {
  std::string_view name;  // the sample's metric name as printed (e.g. "x_bucket")
  std::vector<std::pair<std::string_view, std::string>> labels;  // name → unescaped value
  double value = 0;
  std::optional<int64_t> timestamp_ms;

  // The value of label `name`, or nullptr.
  const std::string* Label(std::string_view name) const;
};

// Calls `on_sample` for every sample whose name is in `wanted` (exact match), in page order.
// `text` must outlive the callback's use of Sample::name and label names. Errors:
// InvalidArgument("line N: ...") for a malformed wanted line.
absl::Status ParseExposition(std::string_view text, std::span<const std::string_view> wanted,
                             const std::function<void(const Sample&)>& on_sample);

// Parses a Prometheus float: Go/Python syntax, NaN, +Inf, -Inf (case-insensitive).
std::optional<double> ParsePromFloat(std::string_view s);

}  // namespace epp::datalayer

#endif  // EPP_DATALAYER_PROMETHEUS_TEXT_H_
