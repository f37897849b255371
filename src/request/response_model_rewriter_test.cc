#include "request/response_model_rewriter.h"

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace epp::request {
namespace {

std::string OneShot(std::string_view target, std::string_view incoming, std::string_view body) {
  ResponseModelRewriter r(target, incoming);
  std::string out;
  r.Process(body, /*last=*/true, out);
  EXPECT_EQ(r.held_bytes(), 0u);
  return out;
}

// Feeds `body` cut at `cuts` (ascending offsets), the last piece with last=true.
std::string Streamed(ResponseModelRewriter& r, std::string_view body,
                     const std::vector<size_t>& cuts) {
  std::string out;
  size_t prev = 0;
  for (size_t c : cuts) {
    r.Process(body.substr(prev, c - prev), /*last=*/false, out);
    EXPECT_LE(r.held_bytes(), r.max_held_bytes());
    prev = c;
  }
  r.Process(body.substr(prev), /*last=*/true, out);
  EXPECT_EQ(r.held_bytes(), 0u);
  return out;
}

TEST(ResponseModelRewriterTest, ReplacesBothSpellings) {
  struct Case {
    std::string in, want;
  };
  const std::vector<Case> cases = {
      {R"({"id":"x","model":"llama","choices":[]})", R"({"id":"x","model":"alias","choices":[]})"},
      {R"({"id": "x", "model": "llama", "choices": []})",
       R"({"id": "x", "model": "alias", "choices": []})"},
      // Every occurrence, e.g. several SSE events in one chunk.
      {"data: {\"model\":\"llama\"}\n\ndata: {\"model\":\"llama\"}\n\ndata: [DONE]\n\n",
       "data: {\"model\":\"alias\"}\n\ndata: {\"model\":\"alias\"}\n\ndata: [DONE]\n\n"},
      // Other names, other keys and other spacing stay as they are.
      {R"({"model":"llama-2","model":"llam","model" : "llama","modelx":"llama"})",
       R"({"model":"llama-2","model":"llam","model" : "llama","modelx":"llama"})"},
      {R"("\"model\":\"llama\"")", R"("\"model\":\"llama\"")"},  // inside a string: escaped
      {"", ""},
      {"no json at all", "no json at all"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(OneShot("llama", "alias", c.in), c.want) << c.in;
  }
}

TEST(ResponseModelRewriterTest, ReportsWhetherItReplaced) {
  ResponseModelRewriter r("llama", "alias");
  std::string out;
  EXPECT_FALSE(r.Process(R"({"model":"other"})", true, out));
  EXPECT_TRUE(r.Process(R"({"model":"llama"})", true, out));
}

TEST(ResponseModelRewriterTest, NamesAreJsonEscaped) {
  EXPECT_EQ(OneShot("a\"b", "c\\d", R"({"model":"a\"b"})"), R"({"model":"c\\d"})");
  EXPECT_EQ(OneShot("a\"b", "x", R"({"model":"a"b"})"), R"({"model":"a"b"})");
}

TEST(ResponseModelRewriterTest, LongerAndShorterNames) {
  EXPECT_EQ(OneShot("meta-llama/Llama-3.1-8B-Instruct", "llama", R"({"model":
"meta-llama/Llama-3.1-8B-Instruct","model":"meta-llama/Llama-3.1-8B-Instruct"})"),
            "{\"model\":\n\"meta-llama/Llama-3.1-8B-Instruct\",\"model\":\"llama\"}");
  EXPECT_EQ(OneShot("m", "a-much-longer-name", R"({"model": "m"})"),
            R"({"model": "a-much-longer-name"})");
}

// A match split across two chunks at every possible offset, in both spellings.
TEST(ResponseModelRewriterTest, MatchSplitAtEveryOffset) {
  for (const std::string& body :
       {std::string("data: {\"id\":\"c\",\"model\":\"llama\",\"choices\":[]}\n\n"),
        std::string("{\"id\": \"c\", \"model\": \"llama\", \"usage\": {}}")}) {
    const std::string want = OneShot("llama", "alias-x", body);
    ASSERT_NE(want, body);
    for (size_t cut = 0; cut <= body.size(); ++cut) {
      ResponseModelRewriter r("llama", "alias-x");
      EXPECT_EQ(Streamed(r, body, {cut}), want) << "cut at " << cut;
    }
  }
}

// Every pair of cuts, with near-misses around the matches, equals the one-shot result.
TEST(ResponseModelRewriterTest, EveryTwoCutsEqualOneShot) {
  const std::string body =
      R"({"model":"llam","model":"llama","x":"\"model\":","model": "llama","model":"llama"})"
      R"("model")";
  const std::string want = OneShot("llama", "A", body);
  EXPECT_EQ(want, R"({"model":"llam","model":"A","x":"\"model\":","model": "A","model":"A"})"
                  R"("model")");
  for (size_t a = 0; a <= body.size(); ++a) {
    for (size_t b = a; b <= body.size(); ++b) {
      ResponseModelRewriter r("llama", "A");
      ASSERT_EQ(Streamed(r, body, {a, b}), want) << a << "," << b;
    }
  }
}

TEST(ResponseModelRewriterTest, OneByteAtATime) {
  std::string body;
  for (int i = 0; i < 20; ++i) {
    body +=
        "data: {\"object\":\"chat.completion.chunk\",\"model\":\"llama\",\"choices\":[{\"delta\":"
        "{\"content\":\"tok\"}}]}\n\n";
  }
  body += "data: [DONE]\n\n";
  const std::string want = OneShot("llama", "alias", body);
  std::vector<size_t> cuts;
  for (size_t i = 1; i < body.size(); ++i) cuts.push_back(i);
  ResponseModelRewriter r("llama", "alias");
  EXPECT_EQ(Streamed(r, body, cuts), want);
}

TEST(ResponseModelRewriterTest, RandomCutsOfRandomText) {
  // Text made of pieces of the patterns, so partial matches are frequent.
  const std::vector<std::string> pieces = {
      "\"", "model", "\":", "\":\"", "\": \"", "llama", "lla", "\"",
      "x",  "\n\n",  "{",   "}",     "mode",   ":",     " ",   "\"model\":\"llama\""};
  std::mt19937 rng(7);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string body;
    const int n = static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) body += pieces[rng() % pieces.size()];
    const std::string want = OneShot("llama", "zz", body);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < body.size(); ++i) {
      if (rng() % 4 == 0) cuts.push_back(i);
    }
    ResponseModelRewriter r("llama", "zz");
    ASSERT_EQ(Streamed(r, body, cuts), want) << body;
  }
}

TEST(ResponseModelRewriterTest, HoldsOnlyWhatMayBeginAMatch) {
  ResponseModelRewriter r("llama", "alias");
  std::string out;
  r.Process("data: {\"id\":1}\n\n", false, out);
  EXPECT_EQ(out, "data: {\"id\":1}\n\n");  // an SSE event's end never begins a match
  EXPECT_EQ(r.held_bytes(), 0u);
  out.clear();
  r.Process("data: {\"id\":2,\"mod", false, out);
  EXPECT_EQ(out, "data: {\"id\":2,");
  EXPECT_EQ(r.held_bytes(), 4u);
  out.clear();
  r.Process("el\":\"lla", false, out);
  EXPECT_EQ(out, "");
  out.clear();
  r.Process("ma\"}", false, out);
  EXPECT_EQ(out, "\"model\":\"alias\"}");
  EXPECT_EQ(r.held_bytes(), 0u);
  out.clear();
  r.Process("{\"model\":\"ll", false, out);
  EXPECT_EQ(out, "{");
  out.clear();
  r.Process("x\"}", false, out);  // not the target after all: released unchanged
  EXPECT_EQ(out, "\"model\":\"llx\"}");
  EXPECT_EQ(r.max_held_bytes(), std::string("\"model\": \"llama\"").size() - 1);
}

TEST(ResponseModelRewriterTest, FlushReleasesHeldBytesUnchanged) {
  ResponseModelRewriter r("llama", "alias");
  std::string out;
  r.Process("{\"x\":1,\"model\": \"llam", false, out);
  EXPECT_EQ(out, "{\"x\":1,");
  r.Flush(out);
  EXPECT_EQ(out, "{\"x\":1,\"model\": \"llam");
  EXPECT_EQ(r.held_bytes(), 0u);
  r.Flush(out);
  EXPECT_EQ(out, "{\"x\":1,\"model\": \"llam");
}

TEST(ResponseModelRewriterTest, LastChunkReleasesAPartialMatch) {
  ResponseModelRewriter r("llama", "alias");
  std::string out;
  r.Process("{\"model\":\"lla", false, out);
  r.Process("", true, out);
  EXPECT_EQ(out, "{\"model\":\"lla");
}

}  // namespace
}  // namespace epp::request
