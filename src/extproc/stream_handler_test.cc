#include "extproc/stream_handler.h"

#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "extproc/protocol_keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduling/plugins/inflight_load_producer.h"
#include "scheduling/plugins/pickers.h"
#include "scheduling/plugins/single_profile_handler.h"
#include "testing/scheduler_from_yaml.h"

namespace epp::extproc {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAreArray;

using ProcessingMode = ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
namespace core = ::envoy::config::core::v3;

constexpr char kChatBody[] =
    R"({"model":"llama","messages":[{"role":"user","content":"hello"}],"stream":false})";
const std::set<std::string> kPool = {"10.0.0.1:8000", "10.0.0.2:8000", "[fd00::3]:9000"};

using Headers = std::vector<std::pair<std::string, std::string>>;

// What Envoy sends: values in raw_value; protocol_config only when `mode` is given.
pb::ProcessingRequest RequestHeaders(
    const Headers& extra, bool end_of_stream = false,
    std::optional<ProcessingMode::BodySendMode> mode = ProcessingMode::FULL_DUPLEX_STREAMED,
    const std::string& path = "/v1/chat/completions") {
  pb::ProcessingRequest msg;
  auto* h = msg.mutable_request_headers();
  h->set_end_of_stream(end_of_stream);
  Headers all = {{":method", "POST"},
                 {":path", path},
                 {":authority", "gateway"},
                 {"content-type", "application/json"}};
  all.insert(all.end(), extra.begin(), extra.end());
  for (const auto& [k, v] : all) {
    auto* hv = h->mutable_headers()->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  }
  if (mode) {
    msg.mutable_protocol_config()->set_request_body_mode(*mode);
    msg.mutable_protocol_config()->set_response_body_mode(*mode);
  }
  return msg;
}

pb::ProcessingRequest RequestBody(const std::string& chunk, bool end_of_stream) {
  pb::ProcessingRequest msg;
  msg.mutable_request_body()->set_body(chunk);
  msg.mutable_request_body()->set_end_of_stream(end_of_stream);
  return msg;
}

pb::ProcessingRequest RequestTrailers() {
  pb::ProcessingRequest msg;
  auto* t = msg.mutable_request_trailers()->mutable_trailers()->add_headers();
  t->set_key("x-checksum");
  t->set_raw_value("abc");
  return msg;
}

pb::ProcessingRequest ResponseHeaders() {
  pb::ProcessingRequest msg;
  auto* hv = msg.mutable_response_headers()->mutable_headers()->add_headers();
  hv->set_key(":status");
  hv->set_raw_value("200");
  return msg;
}

pb::ProcessingRequest ResponseBody(const std::string& chunk, bool end_of_stream) {
  pb::ProcessingRequest msg;
  msg.mutable_response_body()->set_body(chunk);
  msg.mutable_response_body()->set_end_of_stream(end_of_stream);
  return msg;
}

pb::ProcessingRequest ResponseTrailers() {
  pb::ProcessingRequest msg;
  msg.mutable_response_trailers();
  return msg;
}

void SetSubsetList(pb::ProcessingRequest& msg, const std::vector<std::string>& entries) {
  auto& ns = (*msg.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb.subset_hint"];
  auto* list = (*ns.mutable_fields())["x-gateway-destination-endpoint-subset"].mutable_list_value();
  for (const auto& e : entries) list->add_values()->set_string_value(e);
}

void SetSubsetString(pb::ProcessingRequest& msg, const std::string& value) {
  auto& ns = (*msg.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb.subset_hint"];
  (*ns.mutable_fields())["x-gateway-destination-endpoint-subset"].set_string_value(value);
}

const core::HeaderValueOption* FindSet(const pb::HeaderMutation& m, const std::string& key) {
  for (const auto& o : m.set_headers()) {
    if (o.header().key() == key) return &o;
  }
  return nullptr;
}

std::string MetadataDestination(const pb::ProcessingResponse& r) {
  const auto& f = r.dynamic_metadata().fields();
  auto ns = f.find("envoy.lb");
  if (ns == f.end()) return "<no envoy.lb>";
  auto key = ns->second.struct_value().fields().find("x-gateway-destination-endpoint");
  if (key == ns->second.struct_value().fields().end()) return "<no key>";
  return key->second.string_value();
}

std::vector<std::string> RemovedHeaders(const pb::HeaderMutation& m) {
  return std::vector<std::string>(m.remove_headers().begin(), m.remove_headers().end());
}

// Checks the routing answer: destination header + metadata + clear_route_cache; returns the
// destination.
std::string CheckRouting(const pb::CommonResponse& common, const pb::ProcessingResponse& r) {
  EXPECT_TRUE(common.clear_route_cache());
  const auto* dest = FindSet(common.header_mutation(), "x-gateway-destination-endpoint");
  EXPECT_NE(dest, nullptr);
  if (dest == nullptr) return "";
  EXPECT_EQ(dest->header().value(), "");
  EXPECT_EQ(dest->append_action(), core::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  EXPECT_EQ(MetadataDestination(r), dest->header().raw_value());
  return dest->header().raw_value();
}

class StreamHandlerTest : public ::testing::Test {
 protected:
  StreamHandlerTest() {
    auto built = ::epp::testing::SchedulerFromYaml(
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins:\n- type: random-picker\n");
    EXPECT_TRUE(built.ok()) << built.status();
    plugins_ = std::move(built->plugins);
    scheduler_ = std::move(built->scheduler);
    director_ =
        std::make_unique<requestcontrol::Director>(ds_, *scheduler_,
                                                   /*disable_subset_filter=*/false, &rewrites_);
  }

  void FillPool() {
    ds_.SetPoolReady(true);
    ds_.ReplaceAll({datastore::MakeEndpoint("a", "ns", "10.0.0.1", 8000),
                    datastore::MakeEndpoint("b", "ns", "10.0.0.2", 8000),
                    datastore::MakeEndpoint("c", "ns", "fd00::3", 9000)});
  }

  std::unique_ptr<StreamHandler> NewHandler() {
    return std::make_unique<StreamHandler>(*director_, options_);
  }

  // Feeds one message, expecting the protocol to be respected.
  static std::vector<pb::ProcessingResponse> Feed(StreamHandler& h,
                                                  const pb::ProcessingRequest& msg) {
    std::vector<pb::ProcessingResponse> out;
    absl::Status s = h.OnMessage(msg, out);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  datastore::Datastore ds_;
  datastore::ModelRewriteStore rewrites_;
  std::unique_ptr<config::PluginSet> plugins_;
  std::unique_ptr<scheduling::Scheduler> scheduler_;
  std::unique_ptr<requestcontrol::Director> director_;
  StreamOptions options_;
};

// Collects the streamed request-body chunks that follow the headers answer.
struct Forwarded {
  std::string body;
  std::vector<size_t> sizes;
  std::vector<bool> eos;
};

Forwarded CollectRequestChunks(const std::vector<pb::ProcessingResponse>& out, size_t from) {
  Forwarded f;
  for (size_t i = from; i < out.size(); ++i) {
    if (!out[i].has_request_body()) break;
    const auto& s = out[i].request_body().response().body_mutation().streamed_response();
    EXPECT_TRUE(out[i].request_body().response().body_mutation().has_streamed_response()) << i;
    f.body += s.body();
    f.sizes.push_back(s.body().size());
    f.eos.push_back(s.end_of_stream());
  }
  return f;
}

TEST_F(StreamHandlerTest, FullDuplexHoldsHeadersUntilBodyEnd) {
  FillPool();
  // With protocol_config, and without it (Envoys that predate it: full duplex is assumed).
  for (bool with_protocol_config : {true, false}) {
    SCOPED_TRACE(with_protocol_config ? "protocol_config" : "no protocol_config");
    auto h = NewHandler();
    std::optional<ProcessingMode::BodySendMode> mode;
    if (with_protocol_config) mode = ProcessingMode::FULL_DUPLEX_STREAMED;
    const std::string body = kChatBody;
    const std::string first = body.substr(0, 20), second = body.substr(20);

    EXPECT_THAT(Feed(*h, RequestHeaders({{"x-request-id", "rid-1"}}, false, mode)), IsEmpty());
    EXPECT_THAT(Feed(*h, RequestBody(first, false)), IsEmpty());
    EXPECT_EQ(h->destination(), "");
    auto out = Feed(*h, RequestBody(second, true));

    ASSERT_EQ(out.size(), 2u);
    ASSERT_TRUE(out[0].has_request_headers());
    const auto& common = out[0].request_headers().response();
    std::string dest = CheckRouting(common, out[0]);
    EXPECT_EQ(kPool.count(dest), 1u) << dest;
    EXPECT_EQ(h->destination(), dest);
    const auto* cl = FindSet(common.header_mutation(), "content-length");
    ASSERT_NE(cl, nullptr);
    EXPECT_EQ(cl->header().raw_value(), std::to_string(body.size()));
    EXPECT_EQ(cl->append_action(), core::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
    // The request id was given: not set again.
    EXPECT_EQ(FindSet(common.header_mutation(), "x-request-id"), nullptr);
    EXPECT_THAT(RemovedHeaders(common.header_mutation()), IsEmpty());

    Forwarded f = CollectRequestChunks(out, 1);
    EXPECT_EQ(f.body, body);
    EXPECT_EQ(f.eos, (std::vector<bool>{true}));
    EXPECT_FALSE(h->done());
  }
}

TEST_F(StreamHandlerTest, LargeBodyIsEchoedInChunks) {
  FillPool();
  std::string body = R"({"model":"llama","prompt":")";
  const std::string tail = "\"}";
  body.append(200000 - body.size() - tail.size(), 'x');
  body += tail;
  ASSERT_EQ(body.size(), 200000u);

  auto h = NewHandler();
  EXPECT_THAT(Feed(*h, RequestHeaders({{"content-length", "200000"}}, false,
                                      ProcessingMode::FULL_DUPLEX_STREAMED, "/v1/completions")),
              IsEmpty());
  std::vector<pb::ProcessingResponse> out;
  for (size_t off = 0; off < body.size(); off += 30000) {
    size_t n = std::min<size_t>(30000, body.size() - off);
    out = Feed(*h, RequestBody(body.substr(off, n), off + n == body.size()));
    if (off + n < body.size()) {
      ASSERT_THAT(out, IsEmpty());
    }
  }
  ASSERT_EQ(out.size(), 5u);
  ASSERT_TRUE(out[0].has_request_headers());
  const auto* cl = FindSet(out[0].request_headers().response().header_mutation(), "content-length");
  ASSERT_NE(cl, nullptr);
  EXPECT_EQ(cl->header().raw_value(), "200000");
  Forwarded f = CollectRequestChunks(out, 1);
  EXPECT_EQ(f.sizes, (std::vector<size_t>{62000, 62000, 62000, 14000}));
  EXPECT_EQ(f.eos, (std::vector<bool>{false, false, false, true}));
  EXPECT_TRUE(f.body == body);
}

TEST_F(StreamHandlerTest, EmptyFinalChunkWithEndOfStream) {
  FillPool();
  auto h = NewHandler();
  EXPECT_THAT(Feed(*h, RequestHeaders({})), IsEmpty());
  EXPECT_THAT(Feed(*h, RequestBody(kChatBody, false)), IsEmpty());
  auto out = Feed(*h, RequestBody("", true));
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(out[0].has_request_headers());
  CheckRouting(out[0].request_headers().response(), out[0]);
  Forwarded f = CollectRequestChunks(out, 1);
  EXPECT_EQ(f.body, kChatBody);
  EXPECT_EQ(f.eos, (std::vector<bool>{true}));
}

TEST_F(StreamHandlerTest, RequestIdGeneratedWhenAbsent) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  auto out = Feed(*h, RequestBody(kChatBody, true));
  ASSERT_FALSE(out.empty());
  ASSERT_TRUE(out[0].has_request_headers());
  const auto* rid = FindSet(out[0].request_headers().response().header_mutation(), "x-request-id");
  ASSERT_NE(rid, nullptr);
  static const std::regex kUuidV4(
      "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  EXPECT_TRUE(std::regex_match(rid->header().raw_value(), kUuidV4)) << rid->header().raw_value();
  EXPECT_EQ(rid->header().value(), "");

  // Two streams get different ids.
  auto h2 = NewHandler();
  Feed(*h2, RequestHeaders({}));
  auto out2 = Feed(*h2, RequestBody(kChatBody, true));
  ASSERT_FALSE(out2.empty());
  const auto* rid2 =
      FindSet(out2[0].request_headers().response().header_mutation(), "x-request-id");
  ASSERT_NE(rid2, nullptr);
  EXPECT_NE(rid2->header().raw_value(), rid->header().raw_value());
}

TEST_F(StreamHandlerTest, EmptyRequestIdIsReplaced) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({{"x-request-id", ""}}));
  auto out = Feed(*h, RequestBody(kChatBody, true));
  ASSERT_FALSE(out.empty());
  EXPECT_NE(FindSet(out[0].request_headers().response().header_mutation(), "x-request-id"),
            nullptr);
}

TEST_F(StreamHandlerTest, ControlHeadersAreRemoved) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({{"X-Gateway-Inference-Objective", "critical"},
                           {"x-gateway-inference-fairness-id", "tenant-a"},
                           {"x-llm-d-inference-objective", "batch"},
                           {"x-gateway-destination-endpoint-subset", "10.0.0.1:8000"},
                           {"x-other", "kept"}}));
  auto out = Feed(*h, RequestBody(kChatBody, true));
  ASSERT_FALSE(out.empty());
  ASSERT_TRUE(out[0].has_request_headers());
  EXPECT_THAT(RemovedHeaders(out[0].request_headers().response().header_mutation()),
              UnorderedElementsAreArray(
                  {"x-gateway-inference-objective", "x-gateway-inference-fairness-id",
                   "x-llm-d-inference-objective", "x-gateway-destination-endpoint-subset"}));
}

TEST_F(StreamHandlerTest, ModelRewriteChangesForwardedBody) {
  FillPool();
  for (const char* header : {"x-gateway-model-name-rewrite", "x-llm-d-model-name-rewrite"}) {
    SCOPED_TRACE(header);
    auto h = NewHandler();
    Feed(*h, RequestHeaders({{header, "llama-3-70b"}}));
    auto out = Feed(*h, RequestBody(kChatBody, true));
    ASSERT_EQ(out.size(), 2u);
    const std::string want =
        R"({"model":"llama-3-70b","messages":[{"role":"user","content":"hello"}],"stream":false})";
    Forwarded f = CollectRequestChunks(out, 1);
    EXPECT_EQ(f.body, want);
    const auto& m = out[0].request_headers().response().header_mutation();
    const auto* cl = FindSet(m, "content-length");
    ASSERT_NE(cl, nullptr);
    EXPECT_EQ(cl->header().raw_value(), std::to_string(want.size()));
    EXPECT_THAT(RemovedHeaders(m), ::testing::Contains(header));
  }
}

TEST_F(StreamHandlerTest, RequestTrailersEndTheBody) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  EXPECT_THAT(Feed(*h, RequestBody(kChatBody, false)), IsEmpty());
  auto out = Feed(*h, RequestTrailers());
  ASSERT_EQ(out.size(), 3u);
  ASSERT_TRUE(out[0].has_request_headers());
  CheckRouting(out[0].request_headers().response(), out[0]);
  Forwarded f = CollectRequestChunks(out, 1);
  EXPECT_EQ(f.body, kChatBody);
  EXPECT_EQ(f.eos, (std::vector<bool>{false}));
  EXPECT_TRUE(out[2].has_request_trailers());
}

TEST_F(StreamHandlerTest, HeaderOnlyRequestAnsweredAtOnce) {
  FillPool();
  auto h = NewHandler();
  auto out = Feed(*h, RequestHeaders({}, /*end_of_stream=*/true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_request_headers());
  const auto& common = out[0].request_headers().response();
  std::string dest = CheckRouting(common, out[0]);
  EXPECT_EQ(kPool.count(dest), 1u) << dest;
  EXPECT_EQ(FindSet(common.header_mutation(), "content-length"), nullptr);
  EXPECT_EQ(h->destination(), dest);

  // The response flows after it.
  out = Feed(*h, ResponseHeaders());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_response_headers());
}

TEST_F(StreamHandlerTest, HeaderOnlyEmptyPoolIs500) {
  auto h = NewHandler();
  auto out = Feed(*h, RequestHeaders({}, /*end_of_stream=*/true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_immediate_response());
  EXPECT_EQ(out[0].immediate_response().status().code(), 500);
  EXPECT_THAT(out[0].immediate_response().body(), HasSubstr("no pods available in datastore"));
  EXPECT_TRUE(h->done());
}

TEST_F(StreamHandlerTest, BufferedMode) {
  FillPool();
  auto h = NewHandler();
  auto out = Feed(*h, RequestHeaders({}, false, ProcessingMode::BUFFERED));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_request_headers());
  EXPECT_FALSE(out[0].request_headers().has_response());
  EXPECT_FALSE(out[0].has_dynamic_metadata());

  out = Feed(*h, RequestBody(kChatBody, true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_request_body());
  const auto& common = out[0].request_body().response();
  std::string dest = CheckRouting(common, out[0]);
  EXPECT_EQ(kPool.count(dest), 1u) << dest;
  EXPECT_EQ(common.status(), pb::CommonResponse::CONTINUE);
  EXPECT_FALSE(common.has_body_mutation());
  EXPECT_EQ(FindSet(common.header_mutation(), "content-length"), nullptr);
}

TEST_F(StreamHandlerTest, BufferedModeWithRewriteReplacesBody) {
  FillPool();
  auto h = NewHandler();
  Feed(*h,
       RequestHeaders({{"x-gateway-model-name-rewrite", "m2"}}, false, ProcessingMode::BUFFERED));
  auto out = Feed(*h, RequestBody(kChatBody, true));
  ASSERT_EQ(out.size(), 1u);
  const auto& common = out[0].request_body().response();
  CheckRouting(common, out[0]);
  const std::string want =
      R"({"model":"m2","messages":[{"role":"user","content":"hello"}],"stream":false})";
  EXPECT_EQ(common.status(), pb::CommonResponse::CONTINUE_AND_REPLACE);
  EXPECT_EQ(common.body_mutation().body(), want);
  const auto* cl = FindSet(common.header_mutation(), "content-length");
  ASSERT_NE(cl, nullptr);
  EXPECT_EQ(cl->header().raw_value(), std::to_string(want.size()));
}

TEST_F(StreamHandlerTest, InvalidJsonIs400AndEndsTheStream) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  auto out = Feed(*h, RequestBody("{not json", true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_immediate_response());
  const auto& ir = out[0].immediate_response();
  EXPECT_EQ(ir.status().code(), 400);
  EXPECT_THAT(ir.body(), StartsWith("inference error: BadRequest - "));
  EXPECT_TRUE(h->done());
  // Later messages produce nothing.
  EXPECT_THAT(Feed(*h, ResponseHeaders()), IsEmpty());
  EXPECT_THAT(Feed(*h, RequestBody("x", true)), IsEmpty());
}

TEST_F(StreamHandlerTest, BodyOverLimitIs413) {
  FillPool();
  options_.max_request_body_bytes = 50;
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  EXPECT_THAT(Feed(*h, RequestBody(std::string(30, ' '), false)), IsEmpty());
  auto out = Feed(*h, RequestBody(std::string(30, ' '), false));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_immediate_response());
  EXPECT_EQ(out[0].immediate_response().status().code(), 413);
  EXPECT_THAT(out[0].immediate_response().body(),
              StartsWith("inference error: PayloadTooLarge - "));
  EXPECT_TRUE(h->done());
  EXPECT_THAT(Feed(*h, RequestBody("{}", true)), IsEmpty());
}

TEST_F(StreamHandlerTest, EmptyPoolIs503) {
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  auto out = Feed(*h, RequestBody(kChatBody, true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_immediate_response());
  EXPECT_EQ(out[0].immediate_response().status().code(), 503);
  EXPECT_THAT(out[0].immediate_response().body(),
              StartsWith("inference error: ServiceUnavailable - "));
  EXPECT_TRUE(h->done());
}

TEST_F(StreamHandlerTest, SubsetHintAsListValue) {
  FillPool();
  for (int i = 0; i < 20; ++i) {
    auto h = NewHandler();
    auto headers = RequestHeaders({});
    SetSubsetList(headers, {"10.0.0.2:8000"});
    Feed(*h, headers);
    auto out = Feed(*h, RequestBody(kChatBody, true));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(CheckRouting(out[0].request_headers().response(), out[0]), "10.0.0.2:8000");
  }
}

TEST_F(StreamHandlerTest, SubsetHintAsCommaSeparatedString) {
  FillPool();
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto h = NewHandler();
    auto headers = RequestHeaders({});
    SetSubsetString(headers, "10.0.0.9:1, [fd00::3]:9000 ,10.0.0.1:8000");
    Feed(*h, headers);
    auto out = Feed(*h, RequestBody(kChatBody, true));
    ASSERT_EQ(out.size(), 2u);
    seen.insert(CheckRouting(out[0].request_headers().response(), out[0]));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"10.0.0.1:8000", "[fd00::3]:9000"}));
}

TEST_F(StreamHandlerTest, EmptySubsetListIs503) {
  FillPool();
  auto h = NewHandler();
  auto headers = RequestHeaders({});
  SetSubsetList(headers, {});
  Feed(*h, headers);
  auto out = Feed(*h, RequestBody(kChatBody, true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_immediate_response());
  EXPECT_EQ(out[0].immediate_response().status().code(), 503);
}

TEST_F(StreamHandlerTest, ProtocolViolations) {
  FillPool();
  {
    auto h = NewHandler();
    std::vector<pb::ProcessingResponse> out;
    EXPECT_FALSE(h->OnMessage(RequestBody(kChatBody, true), out).ok()) << "body before headers";
    EXPECT_THAT(out, IsEmpty());
  }
  {
    auto h = NewHandler();
    std::vector<pb::ProcessingResponse> out;
    EXPECT_FALSE(h->OnMessage(RequestTrailers(), out).ok()) << "trailers before headers";
  }
  {
    auto h = NewHandler();
    std::vector<pb::ProcessingResponse> out;
    ASSERT_TRUE(h->OnMessage(RequestHeaders({}), out).ok());
    EXPECT_FALSE(h->OnMessage(RequestHeaders({}), out).ok()) << "headers twice";
  }
  {
    auto h = NewHandler();
    std::vector<pb::ProcessingResponse> out;
    EXPECT_FALSE(h->OnMessage(pb::ProcessingRequest(), out).ok()) << "no request set";
  }
  {
    auto h = NewHandler();
    std::vector<pb::ProcessingResponse> out;
    ASSERT_TRUE(h->OnMessage(RequestHeaders({}), out).ok());
    ASSERT_TRUE(h->OnMessage(RequestBody("{", false), out).ok());
    EXPECT_FALSE(h->OnMessage(ResponseHeaders(), out).ok()) << "response before request end";
    EXPECT_FALSE(h->OnMessage(ResponseBody("x", true), out).ok()) << "response body too early";
  }
}

TEST_F(StreamHandlerTest, FullDuplexResponsePath) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  ASSERT_EQ(Feed(*h, RequestBody(kChatBody, true)).size(), 2u);

  auto out = Feed(*h, ResponseHeaders());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_response_headers());

  for (auto [chunk, eos] : std::vector<std::pair<std::string, bool>>{
           {"data: {\"token\":1}\n\n", false}, {"data: [DONE]\n\n", false}, {"", true}}) {
    out = Feed(*h, ResponseBody(chunk, eos));
    ASSERT_EQ(out.size(), 1u) << chunk;
    ASSERT_TRUE(out[0].has_response_body());
    const auto& mut = out[0].response_body().response().body_mutation();
    ASSERT_TRUE(mut.has_streamed_response());
    EXPECT_EQ(mut.streamed_response().body(), chunk);
    EXPECT_EQ(mut.streamed_response().end_of_stream(), eos);
  }

  out = Feed(*h, ResponseTrailers());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_response_trailers());
  EXPECT_FALSE(h->done());
}

TEST_F(StreamHandlerTest, ReadsServedEndpointFromResponseMetadata) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  Feed(*h, RequestBody(kChatBody, true));
  EXPECT_EQ(h->served_endpoint(), "");
  pb::ProcessingRequest resp = ResponseHeaders();
  auto& ns = (*resp.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb"];
  (*ns.mutable_fields())["x-gateway-destination-endpoint-served"].set_string_value("10.0.0.9:8000");
  auto out = Feed(*h, resp);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_response_headers());
  EXPECT_EQ(h->served_endpoint(), "10.0.0.9:8000");
}

TEST_F(StreamHandlerTest, BufferedResponseBodyAnsweredEmpty) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}, false, ProcessingMode::BUFFERED));
  Feed(*h, RequestBody(kChatBody, true));
  auto out = Feed(*h, ResponseHeaders());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].has_response_headers());
  out = Feed(*h, ResponseBody("{\"ok\":true}", true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_response_body());
  EXPECT_FALSE(out[0].response_body().response().has_body_mutation());
}

TEST_F(StreamHandlerTest, StreamedBodyModeIs500NamingTheMode) {
  FillPool();
  auto h = NewHandler();
  auto out = Feed(*h, RequestHeaders({}, false, ProcessingMode::STREAMED));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_immediate_response());
  EXPECT_EQ(out[0].immediate_response().status().code(), 500);
  EXPECT_THAT(out[0].immediate_response().body(), HasSubstr("STREAMED"));
  EXPECT_TRUE(h->done());
  EXPECT_THAT(Feed(*h, RequestBody(kChatBody, true)), IsEmpty());
}

TEST(ImmediateErrorTest, MapsStatusToHttp) {
  struct Case {
    absl::Status status;
    int http;
    const char* name;
  } cases[] = {
      {absl::InvalidArgumentError("bad"), 400, "BadRequest"},
      {absl::NotFoundError("nf"), 404, "NotFound"},
      {absl::OutOfRangeError("big"), 413, "PayloadTooLarge"},
      {absl::ResourceExhaustedError("full"), 429, "ResourceExhausted"},
      {absl::UnavailableError("none"), 503, "ServiceUnavailable"},
      {absl::InternalError("oops"), 500, "Internal"},
      {absl::UnknownError("huh"), 500, "Internal"},
  };
  for (const auto& c : cases) {
    pb::ProcessingResponse r = ImmediateError(c.status);
    ASSERT_TRUE(r.has_immediate_response()) << c.status;
    const auto& ir = r.immediate_response();
    EXPECT_EQ(ir.status().code(), c.http) << c.status;
    EXPECT_EQ(ir.body(),
              std::string("inference error: ") + c.name + " - " + std::string(c.status.message()));
    const auto* ct = FindSet(ir.headers(), "content-type");
    ASSERT_NE(ct, nullptr);
    EXPECT_EQ(ct->header().raw_value(), "text/plain");
  }
}

}  // namespace
}  // namespace epp::extproc

namespace epp::extproc {
namespace {

TEST_F(StreamHandlerTest, ContentLengthOverLimitIs413AtTheHeaders) {
  FillPool();
  options_.max_request_body_bytes = 50;
  auto h = NewHandler();
  auto out = Feed(*h, RequestHeaders({{"content-length", "51"}}));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_immediate_response());
  EXPECT_EQ(out[0].immediate_response().status().code(), 413);
  EXPECT_TRUE(h->done());
}

TEST_F(StreamHandlerTest, LaterProtocolConfigDoesNotChangeTheMode) {
  FillPool();
  auto h = NewHandler();
  EXPECT_THAT(Feed(*h, RequestHeaders({})), IsEmpty());  // FULL_DUPLEX_STREAMED
  pb::ProcessingRequest body = RequestBody(kChatBody, true);
  body.mutable_protocol_config()->set_request_body_mode(ProcessingMode::BUFFERED);
  auto out = Feed(*h, body);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].has_request_headers());
  EXPECT_TRUE(out[1].request_body().response().body_mutation().has_streamed_response());
}

TEST_F(StreamHandlerTest, SubsetHintOfAnotherTypeIsIgnored) {
  FillPool();
  auto h = NewHandler();
  pb::ProcessingRequest headers = RequestHeaders({});
  auto& ns =
      (*headers.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb.subset_hint"];
  (*ns.mutable_fields())["x-gateway-destination-endpoint-subset"].set_number_value(3);
  Feed(*h, headers);
  auto out = Feed(*h, RequestBody(kChatBody, true));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].has_request_headers()) << "a non-list hint must not empty the pool";
}

TEST_F(StreamHandlerTest, ResponseChunkIsMovedFromTheRequestMessage) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  Feed(*h, RequestBody(kChatBody, true));
  Feed(*h, ResponseHeaders());
  pb::ProcessingRequest chunk = ResponseBody("data: {\"x\":1}\n\n", false);
  std::vector<pb::ProcessingResponse> out;
  ASSERT_TRUE(h->OnMessage(chunk, out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].response_body().response().body_mutation().streamed_response().body(),
            "data: {\"x\":1}\n\n");
  EXPECT_TRUE(chunk.response_body().body().empty()) << "the echo took the bytes, not a copy";
}

}  // namespace
}  // namespace epp::extproc

namespace epp::extproc {
namespace {

// --process-responses=false: the handler is done (the stream ends OK) once the request
// direction is fully answered, in every mode, and not before.
TEST_F(StreamHandlerTest, WithoutResponseProcessingDoneAfterTheRequestIsAnswered) {
  FillPool();
  options_.process_responses = false;
  {
    auto h = NewHandler();  // FULL_DUPLEX_STREAMED
    Feed(*h, RequestHeaders({}));
    EXPECT_FALSE(h->done());
    ASSERT_EQ(Feed(*h, RequestBody(kChatBody, true)).size(), 2u);
    EXPECT_TRUE(h->done());
  }
  {
    auto h = NewHandler();  // trailers: done only after the trailers answer
    Feed(*h, RequestHeaders({}));
    Feed(*h, RequestBody(kChatBody, false));
    EXPECT_FALSE(h->done());
    auto out = Feed(*h, RequestTrailers());
    ASSERT_FALSE(out.empty());
    EXPECT_TRUE(out.back().has_request_trailers());
    EXPECT_TRUE(h->done());
  }
  {
    auto h = NewHandler();  // header-only
    ASSERT_EQ(Feed(*h, RequestHeaders({}, /*end_of_stream=*/true)).size(), 1u);
    EXPECT_TRUE(h->done());
  }
  {
    auto h = NewHandler();  // BUFFERED
    Feed(*h, RequestHeaders({}, false, ProcessingMode::BUFFERED));
    EXPECT_FALSE(h->done());
    auto out = Feed(*h, RequestBody(kChatBody, true));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].has_request_body());
    EXPECT_TRUE(h->done());
  }
}

TEST_F(StreamHandlerTest, WithResponseProcessingNotDoneAfterTheRequest) {
  FillPool();
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  Feed(*h, RequestBody(kChatBody, true));
  EXPECT_FALSE(h->done());
}

// --- response model back-rewrite ------------------------------------------------------------

// The streamed response-body answers in `out`: their bodies and end_of_stream flags.
struct Answered {
  std::vector<std::string> bodies;
  std::vector<bool> eos;
  std::string All() const {
    std::string s;
    for (const auto& b : bodies) s += b;
    return s;
  }
};

Answered ResponseAnswers(const std::vector<pb::ProcessingResponse>& out) {
  Answered a;
  for (const auto& r : out) {
    EXPECT_TRUE(r.has_response_body());
    const auto& mut = r.response_body().response().body_mutation();
    EXPECT_TRUE(mut.has_streamed_response());
    EXPECT_LE(mut.streamed_response().body().size(), kBodyChunkBytes);
    a.bodies.push_back(mut.streamed_response().body());
    a.eos.push_back(mut.streamed_response().end_of_stream());
  }
  return a;
}

class ResponseRewriteTest : public StreamHandlerTest {
 protected:
  void SetUp() override { FillPool(); }

  // A routed request for `llama` rewritten to `llama-3-70b` by the header; response headers
  // answered.
  std::unique_ptr<StreamHandler> Rewritten(
      std::optional<ProcessingMode::BodySendMode> mode = ProcessingMode::FULL_DUPLEX_STREAMED,
      const Headers& response_headers = {}) {
    auto h = NewHandler();
    Feed(*h, RequestHeaders({{"x-gateway-model-name-rewrite", "llama-3-70b"}}, false, mode));
    auto out = Feed(*h, RequestBody(kChatBody, true));
    EXPECT_FALSE(out.empty());
    pb::ProcessingRequest rh = ResponseHeaders();
    for (const auto& [k, v] : response_headers) {
      auto* hv = rh.mutable_response_headers()->mutable_headers()->add_headers();
      hv->set_key(k);
      hv->set_raw_value(v);
    }
    EXPECT_EQ(Feed(*h, rh).size(), 1u);
    return h;
  }
};

TEST_F(ResponseRewriteTest, SseChunksGetTheClientsModelBack) {
  auto h = Rewritten();
  const std::string e1 =
      R"(data: {"id":"c1","object":"chat.completion.chunk","model":"llama-3-70b","choices":[]})"
      "\n\n";
  const std::string e2 = R"(data: {"id":"c1","model": "llama-3-70b","usage":null})"
                         "\n\ndata: [DONE]\n\n";
  Answered a = ResponseAnswers(Feed(*h, ResponseBody(e1, false)));
  ASSERT_EQ(a.bodies.size(), 1u);
  EXPECT_EQ(a.bodies[0],
            R"(data: {"id":"c1","object":"chat.completion.chunk","model":"llama","choices":[]})"
            "\n\n");
  EXPECT_FALSE(a.eos[0]);
  a = ResponseAnswers(Feed(*h, ResponseBody(e2, false)));
  ASSERT_EQ(a.bodies.size(), 1u);
  EXPECT_EQ(a.bodies[0], R"(data: {"id":"c1","model": "llama","usage":null})"
                         "\n\ndata: [DONE]\n\n");
  a = ResponseAnswers(Feed(*h, ResponseBody("", true)));
  ASSERT_EQ(a.bodies.size(), 1u);
  EXPECT_EQ(a.bodies[0], "");
  EXPECT_TRUE(a.eos[0]);
}

// An SSE event cut inside "model":"<target>" by the transport: the cut part is held back and
// released, rewritten, with the next chunk.
TEST_F(ResponseRewriteTest, MatchSplitAcrossChunks) {
  const std::string sse =
      R"(data: {"id":"c","model":"llama-3-70b","choices":[{"delta":{"content":"hi"}}]})"
      "\n\ndata: [DONE]\n\n";
  const std::string want =
      R"(data: {"id":"c","model":"llama","choices":[{"delta":{"content":"hi"}}]})"
      "\n\ndata: [DONE]\n\n";
  for (size_t cut = 1; cut < sse.size(); ++cut) {
    SCOPED_TRACE(cut);
    auto h = Rewritten();
    Answered first = ResponseAnswers(Feed(*h, ResponseBody(sse.substr(0, cut), false)));
    Answered second = ResponseAnswers(Feed(*h, ResponseBody(sse.substr(cut), true)));
    ASSERT_EQ(second.bodies.size(), 1u);
    EXPECT_TRUE(second.eos.back());
    EXPECT_EQ(first.All() + second.All(), want);
    for (bool e : first.eos) EXPECT_FALSE(e);
  }
}

TEST_F(ResponseRewriteTest, NonStreamingJsonInPieces) {
  auto h = Rewritten();
  const std::string json =
      R"({"id": "cmpl-1", "object": "chat.completion", "model": "llama-3-70b", "choices": []})";
  std::string got;
  for (size_t i = 0; i < json.size(); i += 7) {
    bool last = i + 7 >= json.size();
    Answered a = ResponseAnswers(Feed(*h, ResponseBody(json.substr(i, 7), last)));
    got += a.All();
    if (last) {
      ASSERT_FALSE(a.eos.empty());
      EXPECT_TRUE(a.eos.back());
    }
  }
  EXPECT_EQ(got,
            R"({"id": "cmpl-1", "object": "chat.completion", "model": "llama", "choices": []})");
}

TEST_F(ResponseRewriteTest, ChunkHeldWholeIsAnsweredWithTheNext) {
  auto h = Rewritten();
  EXPECT_THAT(Feed(*h, ResponseBody("\"mod", false)), IsEmpty());
  Answered a = ResponseAnswers(Feed(*h, ResponseBody("el\":\"llama-3-70b\"}", true)));
  EXPECT_EQ(a.All(), "\"model\":\"llama\"}");
  EXPECT_TRUE(a.eos.back());
}

TEST_F(ResponseRewriteTest, TrailersReleaseHeldBytesBeforeTheirAnswer) {
  auto h = Rewritten();
  Answered a = ResponseAnswers(Feed(*h, ResponseBody("{\"x\":1,\"model\":\"llama-3", false)));
  EXPECT_EQ(a.All(), "{\"x\":1,");
  auto out = Feed(*h, ResponseTrailers());
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(out[0].has_response_body());
  const auto& s = out[0].response_body().response().body_mutation().streamed_response();
  EXPECT_EQ(s.body(), "\"model\":\"llama-3");
  EXPECT_FALSE(s.end_of_stream());
  EXPECT_TRUE(out[1].has_response_trailers());
}

TEST_F(ResponseRewriteTest, LargeRewrittenResponseIsChunked) {
  auto h = Rewritten();
  std::string body = "[";
  while (body.size() < 150'000) body += R"({"model":"llama-3-70b"},)";
  body += "{}]";
  std::string want = body;
  for (size_t p = 0; (p = want.find("llama-3-70b", p)) != std::string::npos;) {
    want.replace(p, 11, "llama");
  }
  Answered a = ResponseAnswers(Feed(*h, ResponseBody(body, true)));
  EXPECT_GE(a.bodies.size(), 2u);
  EXPECT_EQ(a.All(), want);
  EXPECT_TRUE(a.eos.back());
}

TEST_F(ResponseRewriteTest, InferenceModelRewriteRuleIsReversedToo) {
  ASSERT_TRUE(rewrites_.ReplaceModelRewrites({{"alias-rule", {{{"alias"}, {{"llama", 0}}}}}}).ok());
  auto h = NewHandler();
  Feed(*h, RequestHeaders({}));
  auto out = Feed(
      *h, RequestBody(R"({"model":"alias","messages":[{"role":"user","content":"x"}]})", true));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(CollectRequestChunks(out, 1).body,
            R"({"model":"llama","messages":[{"role":"user","content":"x"}]})");
  Feed(*h, ResponseHeaders());
  Answered a = ResponseAnswers(
      Feed(*h, ResponseBody(R"({"object":"chat.completion","model":"llama"})", true)));
  EXPECT_EQ(a.All(), R"({"object":"chat.completion","model":"alias"})");
}

TEST_F(ResponseRewriteTest, WithoutRewriteTheResponseIsUntouchedAndMoved) {
  auto h = NewHandler();
  Feed(*h, RequestHeaders({{"x-gateway-model-name-rewrite", "llama"}}));  // same name: no rewrite
  Feed(*h, RequestBody(kChatBody, true));
  Feed(*h, ResponseHeaders());
  const std::string chunk = "data: {\"model\":\"llama\",\"x\":\"\\\"mod";
  pb::ProcessingRequest msg = ResponseBody(chunk, false);
  std::vector<pb::ProcessingResponse> out;
  ASSERT_TRUE(h->OnMessage(msg, out).ok());
  Answered a = ResponseAnswers(out);
  EXPECT_EQ(a.All(), chunk) << "nothing is held back either";
  EXPECT_TRUE(msg.response_body().body().empty()) << "moved, not copied";
}

TEST_F(ResponseRewriteTest, BufferedResponseIsReplacedWithItsContentLength) {
  auto h = Rewritten(ProcessingMode::BUFFERED, {{"content-length", "999"}});
  auto out = Feed(*h, ResponseBody(R"({"model": "llama-3-70b","choices":[]})", true));
  ASSERT_EQ(out.size(), 1u);
  const auto& common = out[0].response_body().response();
  EXPECT_EQ(common.status(), pb::CommonResponse::CONTINUE_AND_REPLACE);
  const std::string want = R"({"model": "llama","choices":[]})";
  EXPECT_EQ(common.body_mutation().body(), want);
  const auto* cl = FindSet(common.header_mutation(), "content-length");
  ASSERT_NE(cl, nullptr);
  EXPECT_EQ(cl->header().raw_value(), std::to_string(want.size()));
}

TEST_F(ResponseRewriteTest, BufferedResponseWithoutTheTargetIsLeftAlone) {
  auto h = Rewritten(ProcessingMode::BUFFERED);
  auto out = Feed(*h, ResponseBody(R"({"error":"nope"})", true));
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_response_body());
  EXPECT_FALSE(out[0].response_body().response().has_body_mutation());
  EXPECT_EQ(out[0].response_body().response().status(), pb::CommonResponse::CONTINUE);
}

TEST_F(ResponseRewriteTest, BufferedWithoutContentLengthSetsNone) {
  auto h = Rewritten(ProcessingMode::BUFFERED);
  auto out = Feed(*h, ResponseBody(R"({"model":"llama-3-70b"})", true));
  ASSERT_EQ(out.size(), 1u);
  const auto& common = out[0].response_body().response();
  EXPECT_EQ(common.body_mutation().body(), R"({"model":"llama"})");
  EXPECT_EQ(FindSet(common.header_mutation(), "content-length"), nullptr);
}

// A request stays in flight (inflight-load-producer, which token-load-scorer reads) until the
// response ends. Envoy's lean response configuration (response headers SKIP, body NONE,
// trailers SEND) sends nothing of the response and half-closes the stream when it ends, so the
// end of the stream, i.e. the handler going away, is that request's end.
class InflightReleaseTest : public StreamHandlerTest {
 protected:
  InflightReleaseTest() {
    auto built = ::epp::testing::SchedulerFromYaml(
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins:\n- type: inflight-load-producer\n- type: token-load-scorer\n"
        "- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n"
        "  - pluginRef: token-load-scorer\n  - pluginRef: max-score-picker\n");
    EXPECT_TRUE(built.ok()) << built.status();
    director_.reset();
    plugins_ = std::move(built->plugins);
    scheduler_ = std::move(built->scheduler);
    director_ =
        std::make_unique<requestcontrol::Director>(ds_, *scheduler_,
                                                   /*disable_subset_filter=*/false, &rewrites_);
    producer_ = plugins_->FindAs<scheduling::InflightLoadProducer>("inflight-load-producer");
    EXPECT_NE(producer_, nullptr);
  }

  int64_t InflightRequests() const {
    int64_t n = 0;
    for (const auto& e : ds_.GetSnapshot()->endpoints) n += producer_->LoadOf(e->Key()).requests;
    return n;
  }

  // Routes one chat request through `h` (request headers and one body chunk).
  void Route(StreamHandler& h) {
    Feed(h, RequestHeaders({}));
    auto out = Feed(h, RequestBody(kChatBody, true));
    ASSERT_FALSE(out.empty());
    ASSERT_TRUE(out[0].has_request_headers());
  }

  scheduling::InflightLoadProducer* producer_ = nullptr;
};

TEST_F(InflightReleaseTest, TheEndOfTheStreamEndsARequestNothingOfWhoseResponseWasSeen) {
  FillPool();
  auto h = NewHandler();
  Route(*h);
  EXPECT_EQ(InflightRequests(), 1);
  h.reset();  // the stream ends (Envoy's half-close at the end of the response)
  EXPECT_EQ(InflightRequests(), 0);
}

TEST_F(InflightReleaseTest, AStreamedResponseEndsTheRequestAtItsEndOfStream) {
  FillPool();
  auto h = NewHandler();
  Route(*h);
  Feed(*h, ResponseHeaders());
  Feed(*h, ResponseBody("data: {}\n\n", false));
  EXPECT_EQ(InflightRequests(), 1);  // still streaming
  Feed(*h, ResponseBody("data: [DONE]\n\n", true));
  EXPECT_EQ(InflightRequests(), 0);
  h.reset();  // and the end of the stream does not release it twice
  EXPECT_EQ(InflightRequests(), 0);
}

TEST_F(InflightReleaseTest, ResponseTrailersEndTheRequest) {
  FillPool();
  auto h = NewHandler();
  Route(*h);
  EXPECT_EQ(InflightRequests(), 1);
  Feed(*h, ResponseTrailers());  // lean configuration with an upstream that sends trailers
  EXPECT_EQ(InflightRequests(), 0);
}

}  // namespace
}  // namespace epp::extproc
