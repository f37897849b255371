// StreamHandler: the state machine of one ext_proc stream (one HTTP request), independent of
// gRPC so it can be driven message by message in tests. The reactor feeds it each
// ProcessingRequest and writes the responses it returns, in order.
//
// Request direction:
//   FULL_DUPLEX_STREAMED: the headers answer is held until the body's end of stream (or the
//     trailers); then one HeadersResponse (destination header, Content-Length, clear_route_cache,
//     envoy.lb metadata) and the body echoed as streamed_response chunks of <= 62,000 bytes.
//   BUFFERED: the headers are answered at once; the body answer carries the header mutation,
//     metadata and clear_route_cache (and the new body when the model was rewritten).
//   No body (end_of_stream on the headers, or body mode NONE): answered at once.
// Response direction: headers answered at once; FULL_DUPLEX body chunks echoed as they come;
// other modes answered with an empty CONTINUE; trailers answered empty. When the request's
// model was rewritten, the response's `"model":"<target>"` is given back the client's name
// (request::ResponseModelRewriter): FULL_DUPLEX chunks as they pass (a match cut between two
// chunks is held back until the next one completes it, at most a few dozen bytes); BUFFERED
// bodies replaced whole (CONTINUE_AND_REPLACE, with a new Content-Length when the response
// had one). Without a rewrite, chunks are moved through untouched.
// Errors become one ImmediateResponse, after which the handler is done.
//
// Not thread-safe: the reactor serializes calls.
#ifndef EPP_EXTPROC_STREAM_HANDLER_H_
#define EPP_EXTPROC_STREAM_HANDLER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "envoy/service/ext_proc/v3/external_processor.pb.h"
#include "request/response_model_rewriter.h"
#include "requestcontrol/director.h"

namespace epp::extproc {

namespace pb = ::envoy::service::ext_proc::v3;

struct StreamOptions {
  size_t max_request_body_bytes = 64ull << 20;
  // When false, the stream is closed (OK) as soon as the request direction is answered, so the
  // proxy sends the response straight to the client without streaming it through the picker.
  // Envoy continues without the processor for the rest of the request.
  bool process_responses = true;
};

class StreamHandler {
 public:
  StreamHandler(const requestcontrol::Director& director, const StreamOptions& options);
  // Reports a routed request as complete if its response has not ended yet (stream closed).
  ~StreamHandler();
  StreamHandler(const StreamHandler&) = delete;
  StreamHandler& operator=(const StreamHandler&) = delete;

  // Processes one message and appends the answers to `out`. A non-OK status means the peer broke
  // the protocol (e.g. a body before headers): the stream must end with that status. This
  // overload may move payload bytes out of `msg` (a response body chunk is echoed without a
  // copy); the const overload copies.
  absl::Status OnMessage(pb::ProcessingRequest& msg, std::vector<pb::ProcessingResponse>& out);
  absl::Status OnMessage(const pb::ProcessingRequest& msg,
                         std::vector<pb::ProcessingResponse>& out);

  // True once nothing more will be answered (an ImmediateResponse was sent, or the request was
  // answered and responses are not processed): later messages are ignored and the stream should
  // finish with OK when its writes drain.
  bool done() const { return done_; }

  // The destination picked for this request ("" before the pick).
  const std::string& destination() const { return destination_; }

  // The endpoint the proxy reports as having served the request
  // (`envoy.lb`/`x-gateway-destination-endpoint-served` in the response-path metadata); "" until
  // a response message carries it (Envoy sends it only when configured to).
  const std::string& served_endpoint() const { return served_endpoint_; }

 private:
  enum class Phase { kAwaitRequestHeaders, kRequestBody, kRequestDone };
  using BodyMode = ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::BodySendMode;

  absl::Status OnRequestHeaders(const pb::HttpHeaders& h, const pb::ProcessingRequest& msg,
                                std::vector<pb::ProcessingResponse>& out);
  void OnRequestBody(const pb::HttpBody& b, std::vector<pb::ProcessingResponse>& out);
  void OnRequestTrailers(std::vector<pb::ProcessingResponse>& out);
  void OnResponseHeaders(const pb::HttpHeaders& h, std::vector<pb::ProcessingResponse>& out);
  void OnResponseBody(pb::HttpBody& b, std::vector<pb::ProcessingResponse>& out);
  void OnResponseTrailers(std::vector<pb::ProcessingResponse>& out);
  // BUFFERED response modes with a model rewrite: replaces the body when it names the target.
  void RewriteBufferedResponseBody(const pb::HttpBody& b, std::vector<pb::ProcessingResponse>& out);
  void ReadServedEndpoint(const pb::ProcessingRequest& msg);

  // Runs the director on the complete body and emits the answers for the body mode.
  void Decide(bool trailers_follow, std::vector<pb::ProcessingResponse>& out);
  void DecideHeaderOnly(std::vector<pb::ProcessingResponse>& out);
  void EmitError(const absl::Status& status, std::vector<pb::ProcessingResponse>& out);
  absl::Status TooLarge() const;
  void ReleaseBodies();
  // The request direction is fully answered; ends the stream unless responses are processed.
  void RequestAnswered();
  void FillRouting(pb::CommonResponse& common, pb::ProcessingResponse& resp,
                   std::optional<size_t> content_length) const;
  requestcontrol::RequestInput Input() const;
  // Runs the director's completion hooks once for a routed request.
  void Complete();

  const requestcontrol::Director& director_;
  const StreamOptions options_;
  Phase phase_ = Phase::kAwaitRequestHeaders;
  BodyMode request_body_mode_;
  BodyMode response_body_mode_;
  bool done_ = false;
  bool saw_first_message_ = false;

  std::map<std::string, std::string, std::less<>> headers_;  // lower-case keys
  std::string request_id_;
  bool generated_request_id_ = false;
  std::optional<std::vector<std::string>> subset_;
  std::string body_;
  std::string destination_;
  std::string served_endpoint_;
  std::optional<std::string> forwarded_body_;  // rewritten body, when the model changed
  uint64_t decision_id_ = 0;                   // the routed request, until Complete()
  std::string primary_key_;
  // Set when the model was rewritten: gives the response back the client's model name.
  std::optional<request::ResponseModelRewriter> response_rewriter_;
  bool response_has_content_length_ = false;
};

// Maps a status to the reference's ImmediateResponse (code, "inference error: <Code> - <Msg>").
pb::ProcessingResponse ImmediateError(const absl::Status& status);

}  // namespace epp::extproc

#endif  // EPP_EXTPROC_STREAM_HANDLER_H_
