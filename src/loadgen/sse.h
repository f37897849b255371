// Reading OpenAI-compatible streaming responses: the server-sent-events framing and the JSON of
// each chunk. Pure functions and small state machines, no I/O; bytes may be split anywhere and
// may be anything. Malformed input is never an error to the caller, only counted: an event that
// is not a JSON object, or one larger than the limit, is skipped and counted as malformed.
//
// Thread-safety: none needed; one reader per response.
#ifndef EPP_LOADGEN_SSE_H_
#define EPP_LOADGEN_SSE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "simdjson.h"

namespace epp::loadgen {

// Server-sent-events framing (the WHATWG event-stream format, as vLLM, SGLang and OpenAI send
// it): lines end with LF or CRLF; `data:` lines (one optional space after the colon) add to the
// current event's data, joined by "\n"; a blank line ends the event; comment lines (`:`) and
// other fields (`event:`, `id:`, `retry:`) are ignored.
class SseParser {
 public:
  // Events (data included) over `max_event_bytes` are dropped and counted.
  explicit SseParser(size_t max_event_bytes = 4u << 20) : max_event_bytes_(max_event_bytes) {}

  // Consumes `bytes`; calls `on_event(data)` for each event completed by them, in order. The
  // view is valid only during the call.
  void Feed(std::string_view bytes, absl::FunctionRef<void(std::string_view data)> on_event);

  // End of the stream: an unterminated last line is taken as a line, and an event with data
  // but no closing blank line is delivered (lenient: the format would drop it).
  void Finish(absl::FunctionRef<void(std::string_view data)> on_event);

  int64_t dropped_events() const { return dropped_events_; }

 private:
  void Line(std::string_view line, absl::FunctionRef<void(std::string_view)> on_event);
  void Dispatch(absl::FunctionRef<void(std::string_view)> on_event);

  size_t max_event_bytes_;
  std::string partial_;         // an incomplete line carried to the next Feed
  std::string data_;            // the current event's data
  bool has_data_ = false;       // the current event has a data field (possibly empty)
  bool oversized_ = false;      // the current event went over the limit: drop it when it ends
  bool skipping_line_ = false;  // inside a line over the limit: ignore bytes up to its end
  int64_t dropped_events_ = 0;
};

// What one event of an OpenAI completion or chat-completion stream carries.
struct StreamChunk {
  enum class Kind {
    kDone,       // data: [DONE]
    kJson,       // a JSON object (a chunk, a usage chunk, an error, or a whole response)
    kMalformed,  // anything else
  };
  Kind kind = Kind::kMalformed;
  // Choices that carry generated text: non-empty `text` (completions), `delta.content` or
  // `delta.reasoning_content` (chat chunks), `message.content` (a whole chat response).
  int content_pieces = 0;
  std::optional<int64_t> completion_tokens;  // from a non-null `usage`
  std::optional<int64_t> prompt_tokens;
  // An error object: `{"error":{"message":...}}` or `{"error":"..."}` (vLLM's nested and plain
  // shapes), or `{"object":"error","message":...}` (vLLM before 0.10.1). Empty otherwise.
  std::string error;
  bool is_error = false;
};

// Peer text fit for a report: bytes outside printable ASCII become '?', at most `max_bytes`.
std::string PrintableAscii(std::string_view s, size_t max_bytes = 300);

// Parses one event's data. Never fails: anything but [DONE] or a JSON object is kMalformed.
// `parser` is reused between calls to keep its buffers.
StreamChunk ParseStreamChunk(std::string_view data, simdjson::dom::parser& parser);

// The reader of one streamed response body: framing, chunk parsing and the running totals.
class CompletionStreamReader {
 public:
  CompletionStreamReader() = default;
  CompletionStreamReader(const CompletionStreamReader&) = delete;
  CompletionStreamReader& operator=(const CompletionStreamReader&) = delete;

  // Consumes body bytes; returns the content pieces completed by them (for timing: the first
  // piece is the first token, the gaps between pieces the inter-token latencies).
  int Feed(std::string_view bytes);
  // End of the body; returns the content pieces of a final unterminated event.
  int Finish();
  // A body that is one JSON document rather than an event stream (a server that ignored
  // "stream": a whole response with `usage`); returns its content pieces.
  int FeedDocument(std::string_view body);

  int64_t content_pieces() const { return content_pieces_; }
  // The last usage's completion_tokens, when the stream carried a usage.
  std::optional<int64_t> usage_completion_tokens() const { return completion_tokens_; }
  std::optional<int64_t> usage_prompt_tokens() const { return prompt_tokens_; }
  // Output tokens: the usage's completion_tokens when present, otherwise the content pieces.
  int64_t output_tokens() const { return completion_tokens_.value_or(content_pieces_); }
  bool saw_done() const { return saw_done_; }
  bool saw_error() const { return saw_error_; }
  const std::string& error() const { return error_; }  // the first error event's message
  int64_t events() const { return events_; }
  // Events that were neither [DONE] nor a JSON object, and events dropped for their size.
  int64_t malformed_events() const { return malformed_ + sse_.dropped_events(); }

 private:
  void OnEvent(std::string_view data);

  SseParser sse_;
  simdjson::dom::parser json_;
  int pieces_now_ = 0;
  int64_t content_pieces_ = 0;
  std::optional<int64_t> completion_tokens_;
  std::optional<int64_t> prompt_tokens_;
  bool saw_done_ = false;
  bool saw_error_ = false;
  std::string error_;
  int64_t events_ = 0;
  int64_t malformed_ = 0;
};

}  // namespace epp::loadgen

#endif  // EPP_LOADGEN_SSE_H_
