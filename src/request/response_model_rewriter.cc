#include "request/response_model_rewriter.h"

#include <algorithm>

#include "common/strings.h"

namespace epp::request {
namespace {

// Every pattern starts with this, so a scan for it finds every candidate.
constexpr std::string_view kKey = "\"model\":";

}  // namespace

ResponseModelRewriter::ResponseModelRewriter(std::string_view target, std::string_view incoming) {
  const std::string t = JsonEscape(target);
  const std::string in = JsonEscape(incoming);
  patterns_[0] = StrCat(kKey, "\"", t, "\"");
  patterns_[1] = StrCat(kKey, " \"", t, "\"");
  replacements_[0] = StrCat(kKey, "\"", in, "\"");
  replacements_[1] = StrCat(kKey, " \"", in, "\"");
}

size_t ResponseModelRewriter::max_held_bytes() const {
  return std::max(patterns_[0].size(), patterns_[1].size()) - 1;
}

ResponseModelRewriter::Found ResponseModelRewriter::MatchAt(std::string_view data, size_t i,
                                                            bool last) const {
  const std::string_view rest = data.substr(i);
  if (rest.starts_with(patterns_[0])) return Found::kMatch0;
  if (rest.starts_with(patterns_[1])) return Found::kMatch1;
  if (!last) {
    for (const std::string& p : patterns_) {
      if (rest.size() < p.size() && std::string_view(p).starts_with(rest)) return Found::kPartial;
    }
  }
  return Found::kNone;
}

bool ResponseModelRewriter::Process(std::string_view chunk, bool last, std::string& out) {
  std::string_view data = chunk;
  std::string joined;
  if (!held_.empty()) {
    // Only a chunk that follows a held tail is copied before the scan.
    joined = std::move(held_);
    held_.clear();
    joined.append(chunk);
    data = joined;
  }
  bool replaced = false;
  size_t written = 0;         // data[0, written) is in `out`
  size_t hold = data.size();  // data[hold, end) waits for the next chunk
  size_t from = 0;
  while (true) {
    const size_t i = data.find(kKey, from);
    if (i == std::string_view::npos) break;
    const Found f = MatchAt(data, i, last);
    if (f == Found::kPartial) {
      hold = i;
      break;
    }
    if (f == Found::kNone) {
      from = i + 1;
      continue;
    }
    const size_t k = f == Found::kMatch0 ? 0 : 1;
    out.append(data.substr(written, i - written));
    out.append(replacements_[k]);
    written = from = i + patterns_[k].size();
    replaced = true;
  }
  if (!last && hold == data.size() && data.size() > written) {
    // The scan only finds a whole `"model":`; the end may hold its beginning.
    const size_t tail_start =
        std::max(written, data.size() >= kKey.size() ? data.size() - kKey.size() + 1 : 0);
    for (size_t j = tail_start; j < data.size(); ++j) {
      if (data[j] == '"' && kKey.starts_with(data.substr(j))) {
        hold = j;
        break;
      }
    }
  }
  out.append(data.substr(written, hold - written));
  if (hold < data.size()) held_.assign(data.substr(hold));
  return replaced;
}

void ResponseModelRewriter::Flush(std::string& out) {
  out.append(held_);
  held_.clear();
}

}  // namespace epp::request
