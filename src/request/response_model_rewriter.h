// ResponseModelRewriter: gives a response back the model name its client asked for. When the
// picker rewrote the request's `model` (header or InferenceModelRewrite rule), the model server
// answers with the name it was sent; this replaces the JSON members `"model":"<target>"` and
// `"model": "<target>"` with the client's name, byte for byte (other bytes untouched), as the
// reference does. Unlike the reference it works on a stream of chunks for every response kind
// (SSE or one JSON document) and finds a member split across chunks: at most
// max_held_bytes() bytes that could begin a match are held back until the next chunk decides.
//
// Not thread-safe: one instance per response.
#ifndef EPP_REQUEST_RESPONSE_MODEL_REWRITER_H_
#define EPP_REQUEST_RESPONSE_MODEL_REWRITER_H_

#include <array>
#include <string>
#include <string_view>

namespace epp::request {

class ResponseModelRewriter {
 public:
  // `target`: the model name the server was sent; `incoming`: the client's. Both unescaped;
  // they are matched and written JSON-escaped.
  ResponseModelRewriter(std::string_view target, std::string_view incoming);

  // Appends the rewritten bytes of `chunk` (after any held from earlier) to `out`. With
  // `last` nothing is held back; otherwise a tail that may begin a match is kept for the next
  // call. Returns true when a replacement was made in this call.
  bool Process(std::string_view chunk, bool last, std::string& out);

  // Appends the held bytes unchanged (the stream ended without another chunk, e.g. trailers
  // follow) and forgets them.
  void Flush(std::string& out);

  // Bytes held back now, and the most that can ever be held.
  size_t held_bytes() const { return held_.size(); }
  size_t max_held_bytes() const;

 private:
  // Where a match could start at `data[i]` ("model": found there): a full match of pattern
  // 0 or 1, a possible match cut by the end of `data`, or none.
  enum class Found { kMatch0, kMatch1, kPartial, kNone };
  Found MatchAt(std::string_view data, size_t i, bool last) const;

  std::array<std::string, 2> patterns_;      // "model":"<target>"  and  "model": "<target>"
  std::array<std::string, 2> replacements_;  // the same with <incoming>
  std::string held_;
};

}  // namespace epp::request

#endif  // EPP_REQUEST_RESPONSE_MODEL_REWRITER_H_
