// libFuzzer target for the streamed-response reader: arbitrary bytes, split at arbitrary points,
// must never crash, and the totals must not depend on where the bytes were split.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loadgen/meter.h"
#include "loadgen/sse.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace epp::loadgen;
  if (size == 0) return 0;
  // The first byte picks the split points' stride; the rest is the body.
  size_t stride = 1 + data[0] % 64;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  CompletionStreamReader whole;
  int64_t whole_pieces = whole.Feed(body);
  whole_pieces += whole.Finish();

  CompletionStreamReader split;
  int64_t split_pieces = 0;
  for (size_t i = 0; i < body.size(); i += stride)
    split_pieces += split.Feed(body.substr(i, stride));
  split_pieces += split.Finish();

  if (whole_pieces != split_pieces || whole_pieces != whole.content_pieces()) std::abort();
  if (whole.output_tokens() != split.output_tokens() || whole.events() != split.events() ||
      whole.saw_done() != split.saw_done() || whole.error() != split.error() ||
      whole.malformed_events() != split.malformed_events()) {
    std::abort();
  }

  // The same bytes as one JSON document, and through the meter as a 200 and as an error.
  simdjson::dom::parser parser;
  (void)ParseStreamChunk(body, parser);
  for (int status : {200, 503}) {
    ResponseMeter meter;
    meter.OnHeaders(status, status == 200 ? "text/event-stream" : "application/json");
    meter.OnBody(body, 0.5);
    meter.OnComplete(1.0);
    RequestResult r = meter.Take();
    if (r.ttft_s > 1.0 || r.output_tokens < 0) std::abort();
    for (char c : r.error) {
      if (c < 0x20 || c >= 0x7f) std::abort();
    }
  }
  return 0;
}
