#include "extproc/stream_handler.h"

#include <cstdio>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/logging.h"
#include "common/strings.h"
#include "extproc/protocol_keys.h"

namespace epp::extproc {
namespace {

using ProcessingMode = ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
namespace core = ::envoy::config::core::v3;

std::string NewRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;  // RFC 4122 variant
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(hi),
                static_cast<unsigned long long>(lo));
  std::string hex(buf, 32);
  return StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                hex.substr(16, 4), "-", hex.substr(20));
}

void SetHeader(pb::HeaderMutation& m, std::string_view key, std::string_view value) {
  core::HeaderValueOption* opt = m.add_set_headers();
  opt->mutable_header()->set_key(std::string(key));
  // Envoy reads only raw_value; setting value too would fail the mutation.
  opt->mutable_header()->set_raw_value(std::string(value));
  opt->set_append_action(core::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
}

void AddBodyChunks(std::string_view body, bool last_is_eos, bool request,
                   std::vector<pb::ProcessingResponse>& out) {
  size_t offset = 0;
  do {
    size_t n = std::min(kBodyChunkBytes, body.size() - offset);
    pb::ProcessingResponse& r = out.emplace_back();
    pb::BodyResponse* br = request ? r.mutable_request_body() : r.mutable_response_body();
    pb::StreamedBodyResponse* s =
        br->mutable_response()->mutable_body_mutation()->mutable_streamed_response();
    s->set_body(body.data() + offset, n);
    offset += n;
    s->set_end_of_stream(last_is_eos && offset >= body.size());
  } while (offset < body.size());
}

std::string_view CodeName(absl::StatusCode code, int http) {
  switch (http) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 413:
      return "PayloadTooLarge";
    case 429:
      return "ResourceExhausted";
    case 503:
      return "ServiceUnavailable";
    default:
      break;
  }
  return "Internal";
}

int HttpCode(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kOutOfRange:
      return 413;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

}  // namespace

pb::ProcessingResponse ImmediateError(const absl::Status& status) {
  pb::ProcessingResponse r;
  int http = HttpCode(status);
  auto* ir = r.mutable_immediate_response();
  ir->mutable_status()->set_code(static_cast<::envoy::type::v3::StatusCode>(http));
  ir->set_body(StrCat(kErrorBodyPrefix, CodeName(status.code(), http), " - ", status.message()));
  ir->set_details(StrCat("inference_error_", http));
  SetHeader(*ir->mutable_headers(), kContentTypeHeader, "text/plain");
  return r;
}

StreamHandler::StreamHandler(const requestcontrol::Director& director, const StreamOptions& options)
    : director_(director),
      options_(options),
      // Envoys that predate protocol_config are assumed to run the mode GIE requires.
      request_body_mode_(ProcessingMode::FULL_DUPLEX_STREAMED),
      response_body_mode_(ProcessingMode::FULL_DUPLEX_STREAMED) {}

StreamHandler::~StreamHandler() { Complete(); }

void StreamHandler::Complete() {
  if (decision_id_ == 0) return;
  director_.RequestComplete(decision_id_, primary_key_);
  decision_id_ = 0;
}

absl::Status StreamHandler::OnMessage(const pb::ProcessingRequest& msg,
                                      std::vector<pb::ProcessingResponse>& out) {
  pb::ProcessingRequest copy = msg;
  return OnMessage(copy, out);
}

absl::Status StreamHandler::OnMessage(pb::ProcessingRequest& msg,
                                      std::vector<pb::ProcessingResponse>& out) {
  if (done_ || msg.observability_mode()) return absl::OkStatus();
  // The modes are fixed by the first message; a later protocol_config cannot change them.
  if (!saw_first_message_ && msg.has_protocol_config()) {
    request_body_mode_ = msg.protocol_config().request_body_mode();
    response_body_mode_ = msg.protocol_config().response_body_mode();
  }
  saw_first_message_ = true;
  switch (msg.request_case()) {
    case pb::ProcessingRequest::kRequestHeaders:
      return OnRequestHeaders(msg.request_headers(), msg, out);
    case pb::ProcessingRequest::kRequestBody:
      if (phase_ != Phase::kRequestBody) {
        return absl::InvalidArgumentError("request_body received outside the request body phase");
      }
      OnRequestBody(msg.request_body(), out);
      return absl::OkStatus();
    case pb::ProcessingRequest::kRequestTrailers:
      if (phase_ == Phase::kAwaitRequestHeaders) {
        return absl::InvalidArgumentError("request_trailers received before request_headers");
      }
      OnRequestTrailers(out);
      return absl::OkStatus();
    case pb::ProcessingRequest::kResponseHeaders:
      if (phase_ != Phase::kRequestDone) {
        return absl::InvalidArgumentError("response_headers received before the request ended");
      }
      ReadServedEndpoint(msg);
      OnResponseHeaders(msg.response_headers(), out);
      return absl::OkStatus();
    case pb::ProcessingRequest::kResponseBody:
      if (phase_ != Phase::kRequestDone) {
        return absl::InvalidArgumentError("response_body received before the request ended");
      }
      OnResponseBody(*msg.mutable_response_body(), out);
      return absl::OkStatus();
    case pb::ProcessingRequest::kResponseTrailers:
      OnResponseTrailers(out);
      return absl::OkStatus();
    case pb::ProcessingRequest::REQUEST_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("ProcessingRequest carries no request message");
}

absl::Status StreamHandler::OnRequestHeaders(const pb::HttpHeaders& h,
                                             const pb::ProcessingRequest& msg,
                                             std::vector<pb::ProcessingResponse>& out) {
  if (phase_ != Phase::kAwaitRequestHeaders) {
    return absl::InvalidArgumentError("request_headers received twice");
  }
  for (const auto& hv : h.headers().headers()) {
    // Envoy sends raw_value; other clients (e.g. NGINX Gateway Fabric's shim) send value.
    const std::string& v = hv.raw_value().empty() ? hv.value() : hv.raw_value();
    headers_[absl::AsciiStrToLower(hv.key())] = v;
  }
  auto rid = headers_.find(kRequestIdHeader);
  if (rid != headers_.end() && !rid->second.empty()) {
    request_id_ = rid->second;
  } else {
    request_id_ = NewRequestId();
    generated_request_id_ = true;
  }
  const auto& fm = msg.metadata_context().filter_metadata();
  auto ns = fm.find(std::string(kSubsetFilterNamespace));
  if (ns != fm.end()) {
    auto key = ns->second.fields().find(std::string(kSubsetFilterKey));
    if (key != ns->second.fields().end()) {
      // A list of "ip:port" strings (the protocol), or one comma-separated string (what some
      // proxies send). Any other type is ignored, as the reference ignores it: whole pool.
      const auto& v = key->second;
      if (v.has_list_value()) {
        std::vector<std::string> subset;
        for (const auto& item : v.list_value().values()) {
          if (item.has_string_value() && !item.string_value().empty()) {
            subset.push_back(item.string_value());
          }
        }
        subset_ = std::move(subset);
      } else if (v.has_string_value()) {
        std::vector<std::string> subset;
        for (auto part : absl::StrSplit(v.string_value(), ',', absl::SkipWhitespace())) {
          subset.emplace_back(absl::StripAsciiWhitespace(part));
        }
        subset_ = std::move(subset);
      } else {
        EPP_LOG_DEBUG("request {}: ignoring a subset hint that is neither a list nor a string",
                      request_id_);
      }
    }
  }
  phase_ = Phase::kRequestBody;
  if (h.end_of_stream() || request_body_mode_ == ProcessingMode::NONE) {
    phase_ = Phase::kRequestDone;
    DecideHeaderOnly(out);
    return absl::OkStatus();
  }
  if (request_body_mode_ == ProcessingMode::BUFFERED ||
      request_body_mode_ == ProcessingMode::BUFFERED_PARTIAL) {
    // Envoy waits for this answer before it sends the buffered body.
    out.emplace_back().mutable_request_headers();
  } else if (request_body_mode_ != ProcessingMode::FULL_DUPLEX_STREAMED) {
    EmitError(absl::InternalError(StrCat(
                  "request_body_mode ", ProcessingMode::BodySendMode_Name(request_body_mode_),
                  " is not supported; use FULL_DUPLEX_STREAMED or BUFFERED")),
              out);
    return absl::OkStatus();
  }
  auto cl = headers_.find(kContentLengthHeader);
  size_t expected = 0;
  if (cl != headers_.end() && absl::SimpleAtoi(cl->second, &expected)) {
    if (expected > options_.max_request_body_bytes) {
      EmitError(TooLarge(), out);
      return absl::OkStatus();
    }
    // One buffer for the whole body, padded for the parser: no copy as chunks arrive.
    body_.reserve(expected + request::ParsePaddingBytes());
  }
  return absl::OkStatus();
}

absl::Status StreamHandler::TooLarge() const {
  return absl::OutOfRangeError(
      StrCat("request body is larger than ", options_.max_request_body_bytes, " bytes"));
}

void StreamHandler::OnRequestBody(const pb::HttpBody& b, std::vector<pb::ProcessingResponse>& out) {
  size_t need = body_.size() + b.body().size();
  if (need > options_.max_request_body_bytes) {
    EmitError(TooLarge(), out);
    return;
  }
  if (body_.capacity() < need + request::ParsePaddingBytes()) {
    // Without a Content-Length: grow geometrically, keeping room for the parser's padding.
    body_.reserve(std::max(body_.capacity() * 2, need + request::ParsePaddingBytes()));
  }
  body_.append(b.body());
  // In the buffered modes Envoy sends the body in one message, with end_of_stream false when
  // trailers follow (or, in BUFFERED_PARTIAL, when its buffer filled): that message is all the
  // body the picker will see, so decide on it.
  bool buffered = request_body_mode_ == ProcessingMode::BUFFERED ||
                  request_body_mode_ == ProcessingMode::BUFFERED_PARTIAL;
  if (b.end_of_stream() || buffered) Decide(/*trailers_follow=*/!b.end_of_stream(), out);
}

void StreamHandler::OnRequestTrailers(std::vector<pb::ProcessingResponse>& out) {
  // In FULL_DUPLEX_STREAMED trailers end the body: the last echoed chunk must not carry
  // end_of_stream, and the trailers get their own answer after it. In the buffered modes the
  // body was answered already and the trailers only need their answer.
  if (phase_ == Phase::kRequestBody) Decide(/*trailers_follow=*/true, out);
  if (!done_) {
    out.emplace_back().mutable_request_trailers();
    RequestAnswered();
  }
}

void StreamHandler::RequestAnswered() {
  if (!options_.process_responses) done_ = true;
}

requestcontrol::RequestInput StreamHandler::Input() const {
  requestcontrol::RequestInput in;
  in.request_id = request_id_;
  in.headers = &headers_;
  in.subset = subset_;
  auto find = [this](std::string_view a, std::string_view b) -> std::string_view {
    auto it = headers_.find(a);
    if (it != headers_.end() && !it->second.empty()) return it->second;
    it = headers_.find(b);
    return it != headers_.end() ? std::string_view(it->second) : std::string_view();
  };
  in.model_rewrite = find(kModelNameRewriteHeader, kModelNameRewriteHeaderAlias);
  in.objective = find(kObjectiveHeader, kObjectiveHeaderAlias);
  auto path = headers_.find(kPathHeader);
  if (path != headers_.end()) in.path = path->second;
  return in;
}

void StreamHandler::FillRouting(pb::CommonResponse& common, pb::ProcessingResponse& resp,
                                std::optional<size_t> content_length) const {
  common.set_clear_route_cache(true);
  pb::HeaderMutation* m = common.mutable_header_mutation();
  SetHeader(*m, kDestinationEndpointKey, destination_);
  if (content_length) SetHeader(*m, kContentLengthHeader, StrCat(*content_length));
  if (generated_request_id_) SetHeader(*m, kRequestIdHeader, request_id_);
  for (std::string_view h : kStrippedControlHeaders) {
    if (headers_.count(h) > 0) m->add_remove_headers(std::string(h));
  }
  auto& ns = (*resp.mutable_dynamic_metadata()
                   ->mutable_fields())[std::string(kDestinationEndpointNamespace)];
  (*ns.mutable_struct_value()->mutable_fields())[std::string(kDestinationEndpointKey)]
      .set_string_value(destination_);
}

void StreamHandler::DecideHeaderOnly(std::vector<pb::ProcessingResponse>& out) {
  auto d = director_.HandleHeaderOnly(Input());
  if (!d.ok()) {
    EmitError(d.status(), out);
    return;
  }
  destination_ = d->destination;
  pb::ProcessingResponse& r = out.emplace_back();
  FillRouting(*r.mutable_request_headers()->mutable_response(), r, std::nullopt);
  RequestAnswered();
}

void StreamHandler::Decide(bool trailers_follow, std::vector<pb::ProcessingResponse>& out) {
  phase_ = Phase::kRequestDone;
  if (body_.capacity() < body_.size() + request::ParsePaddingBytes()) {
    body_.reserve(body_.size() + request::ParsePaddingBytes());
  }
  auto d = director_.HandleRequest(Input(), body_, body_.capacity());
  if (!d.ok()) {
    EPP_LOG_DEBUG("request {}: {}", request_id_, d.status().ToString());
    EmitError(d.status(), out);
    return;
  }
  destination_ = d->destination;
  decision_id_ = d->id;
  if (!d->endpoints.empty()) primary_key_ = d->endpoints.front()->Key();
  forwarded_body_ = std::move(d->rewritten_body);
  std::string_view body = forwarded_body_ ? std::string_view(*forwarded_body_) : body_;
  if (d->target_model != d->incoming_model) {
    response_rewriter_.emplace(d->target_model, d->incoming_model);
    EPP_LOG_DEBUG("request {}: model {} rewritten to {}{}{}", request_id_, d->incoming_model,
                  d->target_model, d->model_rewrite_name.empty() ? "" : " by ",
                  d->model_rewrite_name);
  }
  EPP_LOG_DEBUG("request {}: model {} -> {}", request_id_, d->target_model, destination_);

  if (request_body_mode_ == ProcessingMode::FULL_DUPLEX_STREAMED) {
    pb::ProcessingResponse& h = out.emplace_back();
    FillRouting(*h.mutable_request_headers()->mutable_response(), h, body.size());
    AddBodyChunks(body, /*last_is_eos=*/!trailers_follow, /*request=*/true, out);
    ReleaseBodies();
    if (!trailers_follow) RequestAnswered();
    return;
  }
  // BUFFERED: headers were answered already; the body answer carries the routing. Envoy applies
  // header mutations from a body answer in this mode.
  pb::ProcessingResponse& r = out.emplace_back();
  pb::CommonResponse* common = r.mutable_request_body()->mutable_response();
  FillRouting(*common, r, forwarded_body_ ? std::optional<size_t>(body.size()) : std::nullopt);
  if (forwarded_body_) {
    common->set_status(pb::CommonResponse::CONTINUE_AND_REPLACE);
    common->mutable_body_mutation()->set_body(std::move(*forwarded_body_));
  }
  ReleaseBodies();
  if (!trailers_follow) RequestAnswered();
}

void StreamHandler::ReleaseBodies() {
  // The answers own their copies now; the stream may live for minutes of streamed output.
  std::string().swap(body_);
  forwarded_body_.reset();
}

void StreamHandler::ReadServedEndpoint(const pb::ProcessingRequest& msg) {
  const auto& fm = msg.metadata_context().filter_metadata();
  auto ns = fm.find(std::string(kDestinationEndpointNamespace));
  if (ns == fm.end()) return;
  auto key = ns->second.fields().find(std::string(kDestinationEndpointServedKey));
  if (key == ns->second.fields().end() || !key->second.has_string_value()) return;
  served_endpoint_ = key->second.string_value();
  if (served_endpoint_ != destination_) {
    // A fallback from the list served it (or the proxy ignored the pick).
    EPP_LOG_DEBUG("request {}: picked {}, served by {}", request_id_, destination_,
                  served_endpoint_);
  }
}

void StreamHandler::OnResponseHeaders(const pb::HttpHeaders& h,
                                      std::vector<pb::ProcessingResponse>& out) {
  if (h.end_of_stream()) Complete();  // a response without a body
  if (response_rewriter_) {
    for (const auto& hv : h.headers().headers()) {
      if (absl::EqualsIgnoreCase(hv.key(), AV(kContentLengthHeader))) {
        response_has_content_length_ = true;
      }
    }
  }
  out.emplace_back().mutable_response_headers();
}

void StreamHandler::OnResponseTrailers(std::vector<pb::ProcessingResponse>& out) {
  Complete();
  if (response_rewriter_ && response_rewriter_->held_bytes() > 0 &&
      response_body_mode_ == ProcessingMode::FULL_DUPLEX_STREAMED) {
    // The body ended without end_of_stream (trailers follow): release what was held back, as
    // body answers before the trailers answer.
    std::string tail;
    response_rewriter_->Flush(tail);
    AddBodyChunks(tail, /*last_is_eos=*/false, /*request=*/false, out);
  }
  out.emplace_back().mutable_response_trailers();
}

void StreamHandler::RewriteBufferedResponseBody(const pb::HttpBody& b,
                                                std::vector<pb::ProcessingResponse>& out) {
  // BUFFERED sends the whole body in this one message (BUFFERED_PARTIAL: what fitted Envoy's
  // buffer; the rest streams past unseen).
  std::string rewritten;
  rewritten.reserve(b.body().size() + 64);
  const bool changed = response_rewriter_->Process(b.body(), /*last=*/true, rewritten);
  pb::ProcessingResponse& r = out.emplace_back();
  if (!changed) {
    r.mutable_response_body();
    return;
  }
  pb::CommonResponse* common = r.mutable_response_body()->mutable_response();
  common->set_status(pb::CommonResponse::CONTINUE_AND_REPLACE);
  // Envoy holds the response headers until this answer and checks a declared length against
  // the new body.
  if (response_has_content_length_) {
    SetHeader(*common->mutable_header_mutation(), kContentLengthHeader, StrCat(rewritten.size()));
  }
  common->mutable_body_mutation()->set_body(std::move(rewritten));
}

void StreamHandler::OnResponseBody(pb::HttpBody& b, std::vector<pb::ProcessingResponse>& out) {
  if (b.end_of_stream()) Complete();
  if (response_body_mode_ == ProcessingMode::FULL_DUPLEX_STREAMED) {
    if (response_rewriter_) {
      std::string rewritten;
      rewritten.reserve(b.body().size() + response_rewriter_->max_held_bytes() + 64);
      response_rewriter_->Process(b.body(), b.end_of_stream(), rewritten);
      // All of a chunk may be held back (it ends in what may begin a match); answering nothing
      // is allowed in FULL_DUPLEX_STREAMED, and the next chunk or the trailers release it.
      if (rewritten.empty() && !b.end_of_stream()) return;
      if (rewritten.size() <= kBodyChunkBytes) {
        pb::StreamedBodyResponse* s = out.emplace_back()
                                          .mutable_response_body()
                                          ->mutable_response()
                                          ->mutable_body_mutation()
                                          ->mutable_streamed_response();
        *s->mutable_body() = std::move(rewritten);
        s->set_end_of_stream(b.end_of_stream());
        return;
      }
      AddBodyChunks(rewritten, b.end_of_stream(), /*request=*/false, out);
      return;
    }
    // Echo at once so SSE tokens are not held back; a chunk that fits one answer is moved.
    if (b.body().size() <= kBodyChunkBytes) {
      pb::StreamedBodyResponse* s = out.emplace_back()
                                        .mutable_response_body()
                                        ->mutable_response()
                                        ->mutable_body_mutation()
                                        ->mutable_streamed_response();
      s->mutable_body()->swap(*b.mutable_body());
      s->set_end_of_stream(b.end_of_stream());
      return;
    }
    AddBodyChunks(b.body(), b.end_of_stream(), /*request=*/false, out);
    return;
  }
  if (response_rewriter_ && (response_body_mode_ == ProcessingMode::BUFFERED ||
                             response_body_mode_ == ProcessingMode::BUFFERED_PARTIAL)) {
    RewriteBufferedResponseBody(b, out);
    return;
  }
  out.emplace_back().mutable_response_body();
}

void StreamHandler::EmitError(const absl::Status& status,
                              std::vector<pb::ProcessingResponse>& out) {
  out.push_back(ImmediateError(status));
  done_ = true;
}

}  // namespace epp::extproc
