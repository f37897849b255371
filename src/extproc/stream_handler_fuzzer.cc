// libFuzzer target for the ext_proc stream state machine: the fuzz input drives a sequence of
// ProcessingRequest messages (any kind, in any order, with fuzzed modes, end-of-stream flags,
// headers, subset hints and bodies). Whatever a peer sends, the handler must not crash and must
// keep the protocol's invariants:
//   - nothing is answered after done();
//   - at most one request-headers answer and one ImmediateResponse per stream;
//   - every streamed body chunk is at most 62,000 bytes;
//   - the request body forwarded in FULL_DUPLEX_STREAMED equals the body received when the
//     model was not rewritten.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "datastore/datastore.h"
#include "extproc/protocol_keys.h"
#include "extproc/stream_handler.h"
#include "testing/scheduler_from_yaml.h"

namespace {

using epp::extproc::pb::ProcessingRequest;
using epp::extproc::pb::ProcessingResponse;
using Mode = ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string Bytes(size_t n) {
    n = std::min(n, size_ - std::min(pos_, size_));
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct World {
  World() {
    auto built = epp::testing::SchedulerFromYaml(
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins:\n- type: random-picker\n  parameters: {maxNumOfEndpoints: 2}\n");
    if (!built.ok()) std::abort();
    plugins = std::move(built->plugins);
    scheduler = std::move(built->scheduler);
    ds.SetPoolReady(true);
    ds.ReplaceAll({epp::datastore::MakeEndpoint("a", "ns", "10.0.0.1", 8000),
                   epp::datastore::MakeEndpoint("b", "ns", "10.0.0.2", 8000),
                   epp::datastore::MakeEndpoint("c", "ns", "fd00::3", 9000)});
    director = std::make_unique<epp::requestcontrol::Director>(ds, *scheduler);
  }
  epp::datastore::Datastore ds;
  std::unique_ptr<epp::config::PluginSet> plugins;
  std::unique_ptr<epp::scheduling::Scheduler> scheduler;
  std::unique_ptr<epp::requestcontrol::Director> director;
};

constexpr char kBody[] =
    R"({"model":"m","messages":[{"role":"user","content":"hello there"}],"stream":true})";

void AddHeader(ProcessingRequest& m, const std::string& k, const std::string& v) {
  auto* h = m.mutable_request_headers()->mutable_headers()->add_headers();
  h->set_key(k);
  h->set_raw_value(v);
}

ProcessingRequest NextMessage(Input& in, bool& sent_body, std::string& body_sent) {
  ProcessingRequest m;
  uint8_t kind = in.Byte();
  uint8_t flags = in.Byte();
  if (flags & 0x80) {
    static constexpr Mode::BodySendMode kModes[] = {Mode::FULL_DUPLEX_STREAMED,
                                                    Mode::BUFFERED,
                                                    Mode::NONE,
                                                    Mode::STREAMED,
                                                    Mode::BUFFERED_PARTIAL,
                                                    static_cast<Mode::BodySendMode>(77)};
    m.mutable_protocol_config()->set_request_body_mode(kModes[in.Byte() % 6]);
    m.mutable_protocol_config()->set_response_body_mode(kModes[in.Byte() % 6]);
  }
  if (flags & 0x40) {
    auto& ns =
        (*m.mutable_metadata_context()
              ->mutable_filter_metadata())[std::string(epp::extproc::kSubsetFilterNamespace)];
    auto& v = (*ns.mutable_fields())[std::string(epp::extproc::kSubsetFilterKey)];
    switch (in.Byte() % 4) {
      case 0:
        v.mutable_list_value()->add_values()->set_string_value(in.Bytes(in.Byte() % 24));
        break;
      case 1:
        v.set_string_value(in.Bytes(in.Byte() % 40));
        break;
      case 2:
        v.set_number_value(in.Byte());
        break;
      default:
        v.mutable_list_value();
    }
  }
  bool eos = flags & 0x1;
  switch (kind % 7) {
    case 0: {
      AddHeader(m, ":path", (flags & 0x2) ? "/v1/chat/completions" : in.Bytes(in.Byte() % 32));
      if (flags & 0x4) AddHeader(m, "content-length", std::to_string(in.Byte() * 97));
      if (flags & 0x8) AddHeader(m, "x-gateway-model-name-rewrite", in.Bytes(in.Byte() % 16));
      if (flags & 0x10) AddHeader(m, "x-request-id", in.Bytes(in.Byte() % 16));
      if (flags & 0x20) AddHeader(m, in.Bytes(in.Byte() % 12), in.Bytes(in.Byte() % 12));
      m.mutable_request_headers()->set_end_of_stream(eos);
      break;
    }
    case 1: {
      std::string chunk;
      if (flags & 0x2) {
        // A slice of a valid body, so the parser and the picker are reached too.
        size_t from = body_sent.size() < sizeof(kBody) - 1 ? body_sent.size() : 0;
        size_t n = std::min<size_t>(in.Byte() % 64 + 1, sizeof(kBody) - 1 - from);
        chunk.assign(kBody + from, n);
      } else {
        chunk = in.Bytes(static_cast<size_t>(in.Byte()) * ((flags & 0x4) ? 600 : 1));
      }
      body_sent += chunk;
      sent_body = true;
      m.mutable_request_body()->set_body(chunk);
      m.mutable_request_body()->set_end_of_stream(eos);
      break;
    }
    case 2:
      m.mutable_request_trailers();
      break;
    case 3:
      m.mutable_response_headers()->set_end_of_stream(eos);
      break;
    case 4:
      m.mutable_response_body()->set_body(in.Bytes(in.Byte()));
      m.mutable_response_body()->set_end_of_stream(eos);
      break;
    case 5:
      m.mutable_response_trailers();
      break;
    default:
      if (flags & 0x2) m.set_observability_mode(true);
      break;  // no request set
  }
  return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  Input in(data, size);
  epp::extproc::StreamOptions options;
  options.max_request_body_bytes = 4096 + (size % 3) * 100000;
  options.process_responses = (size % 2) == 0;
  epp::extproc::StreamHandler handler(*world->director, options);
  int header_answers = 0, immediates = 0;
  bool sent_body = false;
  std::string body_sent, body_accepted;
  bool rewritten = false;
  for (int i = 0; i < 64 && !in.empty(); ++i) {
    ProcessingRequest m = NextMessage(in, sent_body, body_sent);
    for (const auto& h : m.request_headers().headers().headers()) {
      std::string key = absl::AsciiStrToLower(h.key());
      if ((key == epp::extproc::kModelNameRewriteHeader ||
           key == epp::extproc::kModelNameRewriteHeaderAlias) &&
          !h.raw_value().empty()) {
        rewritten = true;
      }
    }
    bool was_done = handler.done();
    std::vector<ProcessingResponse> out;
    absl::Status s = handler.OnMessage(m, out);
    if (was_done && !out.empty()) std::abort();
    if (s.ok() && !was_done && m.has_request_body()) body_accepted += m.request_body().body();
    std::string forwarded_now;
    for (const auto& r : out) {
      if (r.has_request_headers()) ++header_answers;
      if (r.has_immediate_response()) ++immediates;
      for (const auto* b : {&r.request_body(), &r.response_body()}) {
        if (b->response().body_mutation().has_streamed_response() &&
            b->response().body_mutation().streamed_response().body().size() >
                epp::extproc::kBodyChunkBytes) {
          std::abort();
        }
      }
      if (r.request_body().response().body_mutation().has_streamed_response()) {
        forwarded_now += r.request_body().response().body_mutation().streamed_response().body();
      }
    }
    // The whole body is echoed in the answers to the message that completed it.
    if (!forwarded_now.empty() && !rewritten && forwarded_now != body_accepted) std::abort();
    if (header_answers > 1 || immediates > 1) std::abort();
    if (!s.ok()) break;  // the reactor ends the stream here
  }
  return 0;
}
