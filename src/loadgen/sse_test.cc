#include "loadgen/sse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "sim/server/api.h"

namespace epp::loadgen {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Events(SseParser& p, const std::vector<std::string_view>& pieces,
                                bool finish = true) {
  std::vector<std::string> out;
  auto collect = [&out](std::string_view data) { out.emplace_back(data); };
  for (std::string_view piece : pieces) p.Feed(piece, collect);
  if (finish) p.Finish(collect);
  return out;
}

std::vector<std::string> Events(std::string_view body) {
  SseParser p;
  return Events(p, {body});
}

TEST(SseParserTest, FramesEventsAsTheFormatSays) {
  EXPECT_THAT(Events("data: a\n\ndata: b\n\n"), ElementsAre("a", "b"));
  EXPECT_THAT(Events("data: a\r\n\r\ndata:b\r\n\r\n"), ElementsAre("a", "b"));  // CRLF, no space
  EXPECT_THAT(Events("data: one\ndata: two\n\n"), ElementsAre("one\ntwo"));     // joined
  EXPECT_THAT(Events(": ping\n\nevent: x\nid: 3\nretry: 5\ndata: d\n\n"), ElementsAre("d"));
  EXPECT_THAT(Events("data\n\n"), ElementsAre(""));  // a data field without a value
  EXPECT_THAT(Events("data:  two spaces\n\n"), ElementsAre(" two spaces"));  // only one is cut
  EXPECT_THAT(Events("\n\n\nevent: only\n\n"), ElementsAre());               // no data: no event
  EXPECT_THAT(Events("datum: x\n\n"), ElementsAre());
}

TEST(SseParserTest, FinishDeliversAnUnterminatedLastEvent) {
  EXPECT_THAT(Events("data: a\n\ndata: b"), ElementsAre("a", "b"));
  EXPECT_THAT(Events("data: a\n\ndata: b\n"), ElementsAre("a", "b"));
  SseParser p;
  EXPECT_THAT(Events(p, {"data: a\n\ndata: b"}, /*finish=*/false), ElementsAre("a"));
}

TEST(SseParserTest, EverySplitGivesTheSameEvents) {
  const std::string body = "data: {\"x\":1}\r\n\r\n: c\ndata: two\ndata: lines\n\ndata: [DONE]\n\n";
  const auto whole = Events(body);
  ASSERT_EQ(whole.size(), 3u);
  for (size_t i = 0; i <= body.size(); ++i) {
    for (size_t j = i; j <= body.size(); ++j) {
      SseParser p;
      std::string_view b = body;
      EXPECT_EQ(Events(p, {b.substr(0, i), b.substr(i, j - i), b.substr(j)}), whole) << i << j;
    }
  }
  SseParser bytewise;
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < body.size(); ++i) bytes.push_back(std::string_view(body).substr(i, 1));
  EXPECT_EQ(Events(bytewise, bytes), whole);
}

TEST(SseParserTest, OversizedEventsAreDroppedAndCounted) {
  SseParser p(/*max_event_bytes=*/16);
  std::string big_line = "data: " + std::string(40, 'x') + "\n\n";
  std::string big_event = "data: 0123456789\ndata: 0123456789\n\n";
  auto events = Events(p, {"data: ok\n\n", big_line.substr(0, 10), big_line.substr(10), big_event,
                           "data: after\n\n", "data: " + std::string(50, 'y')});
  EXPECT_THAT(events, ElementsAre("ok", "after"));
  EXPECT_EQ(p.dropped_events(), 3);
}

sim::api::ResponseMeta Meta(sim::api::Endpoint endpoint) {
  sim::api::ResponseMeta m;
  m.endpoint = endpoint;
  m.id = "cmpl-1";
  m.created = 1;
  m.model = "m";
  return m;
}

TEST(ParseStreamChunkTest, ReadsTextUsageErrorsAndDone) {
  simdjson::dom::parser parser;
  using Kind = StreamChunk::Kind;
  StreamChunk c = ParseStreamChunk("[DONE]", parser);
  EXPECT_EQ(c.kind, Kind::kDone);
  c = ParseStreamChunk(R"({"choices":[{"index":0,"text":" the"}],"usage":null})", parser);
  EXPECT_EQ(c.kind, Kind::kJson);
  EXPECT_EQ(c.content_pieces, 1);
  EXPECT_FALSE(c.completion_tokens);
  c = ParseStreamChunk(R"({"choices":[{"delta":{"role":"assistant","content":""}}]})", parser);
  EXPECT_EQ(c.content_pieces, 0);  // chat's role chunk carries no text
  c = ParseStreamChunk(R"({"choices":[{"delta":{"content":" a"}}]})", parser);
  EXPECT_EQ(c.content_pieces, 1);
  c = ParseStreamChunk(R"({"choices":[{"delta":{"reasoning_content":"hm"}}]})", parser);
  EXPECT_EQ(c.content_pieces, 1);
  c = ParseStreamChunk(R"({"choices":[{"message":{"content":"whole"}}],
                           "usage":{"prompt_tokens":3,"completion_tokens":9}})",
                       parser);
  EXPECT_EQ(c.content_pieces, 1);
  EXPECT_EQ(c.completion_tokens, 9);
  EXPECT_EQ(c.prompt_tokens, 3);
  c = ParseStreamChunk(R"({"choices":[],"usage":{"completion_tokens":"x"}})", parser);
  EXPECT_FALSE(c.completion_tokens);
  c = ParseStreamChunk(R"({"error":{"message":"boom\n","type":"x","code":500}})", parser);
  EXPECT_TRUE(c.is_error);
  EXPECT_EQ(c.error, "boom?");  // printable only
  c = ParseStreamChunk(R"({"error":"plain"})", parser);
  EXPECT_EQ(c.error, "plain");
  c = ParseStreamChunk(R"({"object":"error","message":"old shape","code":400})", parser);
  EXPECT_EQ(c.error, "old shape");
  c = ParseStreamChunk(R"({"error":null,"choices":[{"text":"x"}]})", parser);
  EXPECT_FALSE(c.is_error);
  for (std::string_view bad : {"", "{", "[1,2]", "42", "\"s\"", "{\"a\":1}}", "\xff\xfe"}) {
    EXPECT_EQ(ParseStreamChunk(bad, parser).kind, Kind::kMalformed) << bad;
  }
}

TEST(CompletionStreamReaderTest, CountsModelsimsOwnFramingAtEverySplit) {
  using sim::api::Endpoint;
  for (Endpoint ep : {Endpoint::kCompletions, Endpoint::kChatCompletions}) {
    sim::api::ResponseMeta m = Meta(ep);
    std::string body;
    if (ep == Endpoint::kChatCompletions) body += sim::api::ChatRoleChunk(m, nullptr);
    for (int k = 0; k < 5; ++k) {
      body += sim::api::StreamChunk(m, sim::api::TokenText(1, k), k == 4 ? "length" : "", nullptr);
    }
    sim::api::Usage usage{7, 5};
    body += sim::api::UsageChunk(m, usage);
    body += "data: [DONE]\n\n";
    for (size_t split = 0; split <= body.size(); split += 7) {
      CompletionStreamReader r;
      int pieces = r.Feed(std::string_view(body).substr(0, split));
      pieces += r.Feed(std::string_view(body).substr(split));
      pieces += r.Finish();
      EXPECT_EQ(pieces, 5);
      EXPECT_EQ(r.content_pieces(), 5);
      EXPECT_EQ(r.usage_completion_tokens(), 5);
      EXPECT_EQ(r.usage_prompt_tokens(), 7);
      EXPECT_EQ(r.output_tokens(), 5);
      EXPECT_TRUE(r.saw_done());
      EXPECT_FALSE(r.saw_error());
      EXPECT_EQ(r.malformed_events(), 0);
    }
  }
}

TEST(CompletionStreamReaderTest, UsageWinsOverChunksAndChunksCountWithoutIt) {
  CompletionStreamReader with_usage;
  with_usage.Feed(
      "data: {\"choices\":[{\"text\":\"two tokens\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n\n");
  EXPECT_EQ(with_usage.content_pieces(), 1);
  EXPECT_EQ(with_usage.output_tokens(), 2);
  CompletionStreamReader without;
  without.Feed(
      "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"choices\":[{\"text\":\"b\"}]}\n\n");
  EXPECT_EQ(without.output_tokens(), 2);
}

TEST(CompletionStreamReaderTest, ErrorEventsAndGarbageAreRecorded) {
  CompletionStreamReader r;
  r.Feed("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: not json\n\n");
  r.Feed(sim::api::StreamErrorEvent(sim::api::Error{500, "InternalServerError", "engine died"}));
  r.Feed("data: {\"error\":{\"message\":\"second\"}}\n\n");
  EXPECT_TRUE(r.saw_error());
  EXPECT_EQ(r.error(), "engine died");  // the first
  EXPECT_EQ(r.malformed_events(), 1);
  EXPECT_EQ(r.content_pieces(), 1);
  EXPECT_EQ(r.events(), 4);
}

TEST(CompletionStreamReaderTest, RandomBytesNeverBreakItAndSplitsDoNotMatter) {
  std::mt19937_64 rng(1);
  const std::string alphabet = "data: {}[]\":,\n\r text choices usage completion_tokens 1\xff";
  for (int round = 0; round < 500; ++round) {
    std::string body;
    size_t n = rng() % 400;
    for (size_t i = 0; i < n; ++i) body.push_back(alphabet[rng() % alphabet.size()]);
    CompletionStreamReader whole, split;
    int64_t a = whole.Feed(body) + whole.Finish();
    int64_t b = 0;
    size_t stride = 1 + rng() % 13;
    for (size_t i = 0; i < body.size(); i += stride) {
      b += split.Feed(std::string_view(body).substr(i, stride));
    }
    b += split.Finish();
    EXPECT_EQ(a, b);
    EXPECT_EQ(whole.events(), split.events());
    EXPECT_EQ(whole.output_tokens(), split.output_tokens());
  }
}

}  // namespace
}  // namespace epp::loadgen
