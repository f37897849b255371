// What one request's exchange showed, and the meter that works it out from the exchange's
// events: the HTTP status, body bytes as they arrive (with their time), the end of the message
// or a transport failure. Pure (the caller passes the times), so the arithmetic is testable
// without sockets.
//
// Definitions (those of vLLM's and inference-perf's benchmark clients):
//   TTFT  = the time from the request being due to the first chunk carrying generated text;
//   ITL   = the gaps between successive such chunks (several chunks in one read give gaps
//           of 0 after the first: they arrived together);
//   E2E   = the time from due to the end of the response;
//   output tokens = the final usage's completion_tokens when the server sent a usage
//           (`stream_options.include_usage`), otherwise the chunks carrying text.
//
// Thread-safety: none; one meter per exchange.
#ifndef EPP_LOADGEN_METER_H_
#define EPP_LOADGEN_METER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/sse.h"

namespace epp::loadgen {

enum class ErrorKind {
  kNone,
  kHttpStatus,   // a complete answer with a status other than 200
  kStreamError,  // a 200 stream that carried an error event
  kTimeout,      // the request's deadline passed
  kConnect,      // the connection could not be opened
  kTransport,    // write or read failed, or the connection closed before the answer ended
  kCancelled,    // the run was stopped while the request was in flight
};
std::string_view ErrorKindName(ErrorKind kind);  // "http_status", "timeout", ...

struct RequestResult {
  // The HTTP status of a complete answer; 0 when there was none (connect or transport failure,
  // timeout, cancellation), even if a status line had arrived.
  int status = 0;
  ErrorKind error_kind = ErrorKind::kNone;
  std::string error;   // what went wrong, printable ASCII; empty on success
  double ttft_s = -1;  // -1: no generated text arrived
  double e2e_s = 0;
  std::vector<double> itl_s;
  int64_t output_tokens = 0;  // also what a failed stream delivered before it failed
  int64_t content_chunks = 0;
  std::optional<int64_t> prompt_tokens;  // from the usage
  bool ok() const { return error_kind == ErrorKind::kNone; }
};

class ResponseMeter {
 public:
  ResponseMeter() = default;
  ResponseMeter(const ResponseMeter&) = delete;
  ResponseMeter& operator=(const ResponseMeter&) = delete;

  // The status line and headers arrived. `content_type` decides between an event stream and
  // a single JSON document.
  void OnHeaders(int status, std::string_view content_type);
  // Body bytes (decoded from any chunked encoding) that arrived at `t`.
  void OnBody(std::string_view bytes, double t);
  // The whole response arrived at `t`.
  void OnComplete(double t);
  // The exchange failed at `t` (`message` says how, e.g. "read: end of stream").
  void OnFailure(ErrorKind kind, std::string_view message, double t);

  bool headers_seen() const { return status_ != 0; }
  // The result; call once, after OnComplete or OnFailure.
  RequestResult Take();

 private:
  void Pieces(int n, double t);

  int status_ = 0;
  bool event_stream_ = false;
  CompletionStreamReader reader_;
  std::string held_;  // a JSON document or an error body (bounded)
  double last_piece_s_ = -1;
  RequestResult result_;
};

}  // namespace epp::loadgen

#endif  // EPP_LOADGEN_METER_H_
