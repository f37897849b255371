#include "datalayer/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/strings.h"

namespace epp::datalayer {
namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }

bool Wanted(std::string_view name, std::span<const std::string_view> wanted) {
  for (std::string_view w : wanted) {
    if (w.size() == name.size() && std::memcmp(w.data(), name.data(), name.size()) == 0) {
      return true;
    }
  }
  return false;
}

// Parses one wanted sample line (without its newline) into `out`. Returns an error message,
// empty on success.
std::string ParseLine(std::string_view line, size_t name_end, Sample& out) {
  size_t i = name_end;
  out.name = line.substr(0, name_end);
  out.labels.clear();
  out.timestamp_ms.reset();
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      while (i < line.size() && IsBlank(line[i])) ++i;
      if (i >= line.size()) return "unterminated label set";
      if (line[i] == '}') {
        ++i;
        break;
      }
      size_t ls = i;
      if (!IsNameStart(line[i])) return "invalid label name";
      while (i < line.size() && IsNameChar(line[i])) ++i;
      std::string_view lname = line.substr(ls, i - ls);
      while (i < line.size() && IsBlank(line[i])) ++i;
      if (i >= line.size() || line[i] != '=') return StrCat("label ", lname, ": expected '='");
      ++i;
      while (i < line.size() && IsBlank(line[i])) ++i;
      if (i >= line.size() || line[i] != '"') return StrCat("label ", lname, ": expected '\"'");
      ++i;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= line.size()) break;
          char e = line[i++];
          if (e == 'n') {
            value.push_back('\n');
          } else if (e == '\\' || e == '"') {
            value.push_back(e);
          } else {
            return StrCat("label ", lname, ": invalid escape \\", std::string_view(&e, 1));
          }
        } else {
          value.push_back(c);
        }
      }
      if (!closed) return StrCat("label ", lname, ": unterminated value");
      out.labels.emplace_back(lname, std::move(value));
      while (i < line.size() && IsBlank(line[i])) ++i;
      if (i < line.size() && line[i] == ',') {
        ++i;
        continue;
      }
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      return StrCat("label ", lname, ": expected ',' or '}'");
    }
  }
  if (i >= line.size() || !IsBlank(line[i])) return "expected a value after the metric";
  while (i < line.size() && IsBlank(line[i])) ++i;
  size_t vs = i;
  while (i < line.size() && !IsBlank(line[i])) ++i;
  auto value = ParsePromFloat(line.substr(vs, i - vs));
  if (!value) return StrCat("invalid value \"", line.substr(vs, i - vs), "\"");
  out.value = *value;
  while (i < line.size() && IsBlank(line[i])) ++i;
  if (i < line.size() && line[i] != '#') {
    size_t ts = i;
    while (i < line.size() && !IsBlank(line[i])) ++i;
    int64_t t = 0;
    std::string_view tv = line.substr(ts, i - ts);
    auto [ptr, ec] = std::from_chars(tv.data(), tv.data() + tv.size(), t);
    if (ec != std::errc() || ptr != tv.data() + tv.size()) {
      return StrCat("invalid timestamp \"", tv, "\"");
    }
    out.timestamp_ms = t;
    while (i < line.size() && IsBlank(line[i])) ++i;
  }
  // Anything left must be an exemplar ("# {...} v [ts]"), which we ignore.
  if (i < line.size() && line[i] != '#') return "unexpected text after the value";
  return "";
}

}  // namespace

const std::string* Sample::Label(std::string_view label) const {
  for (const auto& [n, v] : labels) {
    if (n == label) return &v;
  }
  return nullptr;
}

std::optional<double> ParsePromFloat(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool neg = false;
  std::string_view body = s;
  if (body[0] == '+' || body[0] == '-') {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  auto lower_eq = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      char c = a[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != b[i]) return false;
    }
    return true;
  };
  if (lower_eq(body, "inf") || lower_eq(body, "infinity")) {
    return neg ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  if (lower_eq(body, "nan")) return std::numeric_limits<double>::quiet_NaN();
  if (body.empty() || body[0] == '+' || body[0] == '-') return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), v);
  if (ec != std::errc() || ptr != body.data() + body.size()) return std::nullopt;
  return neg ? -v : v;
}

absl::Status ParseExposition(std::string_view text, std::span<const std::string_view> wanted,
                             const std::function<void(const Sample&)>& on_sample) {
  Sample sample;
  size_t line_no = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  while (p < end) {
    ++line_no;
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* line_end = nl ? nl : end;
    std::string_view line(p, static_cast<size_t>(line_end - p));
    p = nl ? nl + 1 : end;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t i = 0;
    while (i < line.size() && IsBlank(line[i])) ++i;
    if (i >= line.size() || line[i] == '#') continue;
    line.remove_prefix(i);
    size_t name_end = 0;
    while (name_end < line.size() && IsNameChar(line[name_end])) ++name_end;
    if (!Wanted(line.substr(0, name_end), wanted)) continue;
    if (name_end == 0 || !IsNameStart(line[0])) continue;
    std::string err = ParseLine(line, name_end, sample);
    if (!err.empty()) {
      return absl::InvalidArgumentError(
          StrCat("line ", line_no, ": ", line.substr(0, name_end), ": ", err));
    }
    on_sample(sample);
  }
  return absl::OkStatus();
}

}  // namespace epp::datalayer
