#include "loadgen/meter.h"

#include <algorithm>

#include "common/strings.h"

namespace epp::loadgen {

namespace {

constexpr size_t kMaxDocumentBytes = 16u << 20;  // a whole (non-streamed) response
constexpr size_t kMaxErrorBodyBytes = 4096;      // kept of an error answer

bool IsEventStream(std::string_view content_type) {
  std::string lower;
  for (char c : content_type.substr(0, 17)) lower.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return lower == "text/event-stream";
}

}  // namespace

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone:
      return "none";
    case ErrorKind::kHttpStatus:
      return "http_status";
    case ErrorKind::kStreamError:
      return "stream_error";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kConnect:
      return "connect";
    case ErrorKind::kTransport:
      return "transport";
    case ErrorKind::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

void ResponseMeter::OnHeaders(int status, std::string_view content_type) {
  status_ = status;
  event_stream_ = IsEventStream(content_type);
}

void ResponseMeter::OnBody(std::string_view bytes, double t) {
  if (status_ == 200 && event_stream_) return Pieces(reader_.Feed(bytes), t);
  size_t limit = status_ == 200 ? kMaxDocumentBytes : kMaxErrorBodyBytes;
  held_.append(bytes.substr(0, limit - std::min(limit, held_.size())));
}

void ResponseMeter::Pieces(int n, double t) {
  for (int i = 0; i < n; ++i) {
    if (last_piece_s_ < 0) {
      result_.ttft_s = t;
    } else {
      result_.itl_s.push_back(t - last_piece_s_);
    }
    last_piece_s_ = t;
  }
}

void ResponseMeter::OnComplete(double t) {
  result_.e2e_s = t;
  result_.status = status_;
  if (status_ != 200) {
    result_.error_kind = ErrorKind::kHttpStatus;
    // vLLM's error shapes give a message; otherwise the start of the body.
    simdjson::dom::parser parser;
    StreamChunk c = ParseStreamChunk(held_, parser);
    result_.error = StrCat("HTTP ", status_, ": ", c.is_error ? c.error : PrintableAscii(held_));
    return;
  }
  Pieces(event_stream_ ? reader_.Finish() : reader_.FeedDocument(held_), t);
  if (reader_.saw_error()) {
    result_.error_kind = ErrorKind::kStreamError;
    result_.error = StrCat("error event in the stream: ", reader_.error());
  }
}

void ResponseMeter::OnFailure(ErrorKind kind, std::string_view message, double t) {
  result_.e2e_s = t;
  if (status_ != 0 && status_ != 200 && kind != ErrorKind::kCancelled) {
    // The server had refused the request; only its error body was cut short.
    result_.status = status_;
    result_.error_kind = ErrorKind::kHttpStatus;
    result_.error = StrCat("HTTP ", status_, " (body cut short: ", PrintableAscii(message), ")");
    return;
  }
  result_.status = 0;
  result_.error_kind = kind;
  result_.error = PrintableAscii(message);
  if (status_ != 0) {
    StrAppend(&result_.error, " (after HTTP ", status_, " and ", reader_.content_pieces(),
              " chunks of text)");
  }
}

RequestResult ResponseMeter::Take() {
  result_.output_tokens = reader_.output_tokens();
  result_.content_chunks = reader_.content_pieces();
  result_.prompt_tokens = reader_.usage_prompt_tokens();
  return std::move(result_);
}

}  // namespace epp::loadgen
