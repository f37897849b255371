#include "loadgen/sse.h"

#include <algorithm>

namespace epp::loadgen {

namespace dom = simdjson::dom;

namespace {

// Non-empty string value.
bool HasText(simdjson::simdjson_result<dom::element> value) {
  std::string_view s;
  return value.get(s) == simdjson::SUCCESS && !s.empty();
}

std::string_view Trim(std::string_view s) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

void SseParser::Feed(std::string_view bytes,
                     absl::FunctionRef<void(std::string_view data)> on_event) {
  while (!bytes.empty()) {
    size_t nl = bytes.find('\n');
    std::string_view piece = bytes.substr(0, nl);
    if (skipping_line_) {
      if (nl == std::string_view::npos) return;
      skipping_line_ = false;
      bytes.remove_prefix(nl + 1);
      continue;
    }
    if (partial_.size() + piece.size() > max_event_bytes_) {
      // A line over the limit cannot belong to an event we keep.
      oversized_ = true;
      partial_.clear();
      if (nl == std::string_view::npos) {
        skipping_line_ = true;
        return;
      }
      bytes.remove_prefix(nl + 1);
      continue;
    }
    if (nl == std::string_view::npos) {
      partial_.append(piece);
      return;
    }
    bytes.remove_prefix(nl + 1);
    if (partial_.empty()) {
      Line(piece, on_event);
    } else {
      partial_.append(piece);
      Line(partial_, on_event);
      partial_.clear();
    }
  }
}

void SseParser::Finish(absl::FunctionRef<void(std::string_view data)> on_event) {
  skipping_line_ = false;
  if (!partial_.empty()) {
    std::string line = std::move(partial_);
    partial_.clear();
    Line(line, on_event);
  }
  if (has_data_ || oversized_) Dispatch(on_event);
}

void SseParser::Line(std::string_view line, absl::FunctionRef<void(std::string_view)> on_event) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty()) return Dispatch(on_event);
  if (line.front() == ':') return;  // a comment (keep-alive pings)
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  if (field != "data") return;
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (oversized_) return;
  if (data_.size() + value.size() + 1 > max_event_bytes_) {
    oversized_ = true;
    data_.clear();
    return;
  }
  if (has_data_) data_.push_back('\n');
  data_.append(value);
  has_data_ = true;
}

void SseParser::Dispatch(absl::FunctionRef<void(std::string_view)> on_event) {
  if (oversized_) {
    ++dropped_events_;
  } else if (has_data_) {
    on_event(data_);
  }
  data_.clear();
  has_data_ = false;
  oversized_ = false;
}

std::string PrintableAscii(std::string_view s, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(s.size(), max_bytes));
  for (char c : s.substr(0, max_bytes)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return out;
}

StreamChunk ParseStreamChunk(std::string_view data, dom::parser& parser) {
  StreamChunk c;
  data = Trim(data);
  if (data == "[DONE]") {
    c.kind = StreamChunk::Kind::kDone;
    return c;
  }
  dom::element root;
  dom::object obj;
  if (parser.parse(data.data(), data.size(), /*realloc_if_needed=*/true).get(root) !=
          simdjson::SUCCESS ||
      root.get(obj) != simdjson::SUCCESS) {
    return c;
  }
  c.kind = StreamChunk::Kind::kJson;

  dom::element error;
  if (obj["error"].get(error) == simdjson::SUCCESS && !error.is_null()) {
    c.is_error = true;
    std::string_view message = "error";
    std::string_view given;
    if (error.get(given) == simdjson::SUCCESS || error["message"].get(given) == simdjson::SUCCESS) {
      message = given;
    }
    c.error = PrintableAscii(message);
  }
  std::string_view object_name;
  if (obj["object"].get(object_name) == simdjson::SUCCESS && object_name == "error") {
    c.is_error = true;
    std::string_view message = "error";
    std::string_view given;
    if (obj["message"].get(given) == simdjson::SUCCESS) message = given;
    c.error = PrintableAscii(message);
  }

  dom::array choices;
  if (obj["choices"].get(choices) == simdjson::SUCCESS) {
    for (dom::element choice_element : choices) {
      dom::object choice;
      if (choice_element.get(choice) != simdjson::SUCCESS) continue;
      dom::object part;
      if (HasText(choice["text"])) {
        ++c.content_pieces;
      } else if (choice["delta"].get(part) == simdjson::SUCCESS) {
        if (HasText(part["content"]) || HasText(part["reasoning_content"])) ++c.content_pieces;
      } else if (choice["message"].get(part) == simdjson::SUCCESS) {
        if (HasText(part["content"]) || HasText(part["reasoning_content"])) ++c.content_pieces;
      }
    }
  }

  dom::object usage;
  if (obj["usage"].get(usage) == simdjson::SUCCESS) {
    int64_t n = 0;
    if (usage["completion_tokens"].get(n) == simdjson::SUCCESS && n >= 0) c.completion_tokens = n;
    if (usage["prompt_tokens"].get(n) == simdjson::SUCCESS && n >= 0) c.prompt_tokens = n;
  }
  return c;
}

int CompletionStreamReader::Feed(std::string_view bytes) {
  pieces_now_ = 0;
  sse_.Feed(bytes, [this](std::string_view data) { OnEvent(data); });
  return pieces_now_;
}

int CompletionStreamReader::Finish() {
  pieces_now_ = 0;
  sse_.Finish([this](std::string_view data) { OnEvent(data); });
  return pieces_now_;
}

int CompletionStreamReader::FeedDocument(std::string_view body) {
  pieces_now_ = 0;
  OnEvent(body);
  return pieces_now_;
}

void CompletionStreamReader::OnEvent(std::string_view data) {
  ++events_;
  StreamChunk c = ParseStreamChunk(data, json_);
  switch (c.kind) {
    case StreamChunk::Kind::kDone:
      saw_done_ = true;
      return;
    case StreamChunk::Kind::kMalformed:
      ++malformed_;
      return;
    case StreamChunk::Kind::kJson:
      break;
  }
  pieces_now_ += c.content_pieces;
  content_pieces_ += c.content_pieces;
  if (c.completion_tokens) completion_tokens_ = c.completion_tokens;
  if (c.prompt_tokens) prompt_tokens_ = c.prompt_tokens;
  if (c.is_error && !saw_error_) {
    saw_error_ = true;
    error_ = std::move(c.error);
  }
}

}  // namespace epp::loadgen
