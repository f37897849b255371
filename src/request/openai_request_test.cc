#include "request/openai_request.h"

#include <string>

#include "gtest/gtest.h"

namespace epp::request {
namespace {

absl::StatusOr<ParsedRequest> Parse(ApiKind kind, const std::string& body) {
  return ParseRequest(kind, body, body.size());
}

TEST(ApiKindTest, FromPathSuffix) {
  struct Case {
    const char* path;
    ApiKind want;
  } cases[] = {
      {"/v1/chat/completions", ApiKind::kChatCompletions},
      {"/v1/completions", ApiKind::kCompletions},
      {"/v1/completions?x=1", ApiKind::kCompletions},
      {"/v1/chat/completions/", ApiKind::kChatCompletions},
      {"/v1/embeddings", ApiKind::kEmbeddings},
      {"/v1/responses", ApiKind::kResponses},
      {"/v1/conversations", ApiKind::kConversations},
      {"/something/else", ApiKind::kCompletions},
      {"", ApiKind::kCompletions},
  };
  for (const auto& c : cases) EXPECT_EQ(ApiKindFromPath(c.path), c.want) << c.path;
}

TEST(ParseRequestTest, ChatKeepsSpans) {
  std::string body =
      R"({"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}],)"
      R"("cache_salt":"s1","max_tokens":5})";
  auto r = Parse(ApiKind::kChatCompletions, body);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "llama");
  EXPECT_EQ(r->model_token.In(body), "\"llama\"");
  EXPECT_TRUE(r->stream);
  EXPECT_EQ(r->prompt.In(body), R"([{"role":"user","content":"hi"}])");
  EXPECT_EQ(r->cache_salt, "s1");
}

TEST(ParseRequestTest, CompletionsPromptForms) {
  for (const char* prompt : {R"("hello")", R"(["a","b"])", "[1,2,3]", "[[1,2]]"}) {
    std::string body = std::string(R"({"prompt":)") + prompt + R"(,"model":"m"})";
    auto r = Parse(ApiKind::kCompletions, body);
    ASSERT_TRUE(r.ok()) << prompt << ": " << r.status();
    EXPECT_EQ(r->prompt.In(body), prompt);
    EXPECT_FALSE(r->stream);
  }
}

TEST(ParseRequestTest, EscapedModelIsUnescaped) {
  std::string body = R"({"model":"a\"b\u0041","prompt":"x"})";
  auto r = Parse(ApiKind::kCompletions, body);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "a\"bA");
  EXPECT_EQ(r->model_token.In(body), R"("a\"b\u0041")");
}

TEST(ParseRequestTest, Errors) {
  struct Case {
    ApiKind kind;
    const char* body;
    const char* message_part;
  } cases[] = {
      {ApiKind::kCompletions, "", "invalid JSON"},
      {ApiKind::kCompletions, "{", "invalid JSON"},
      {ApiKind::kCompletions, "not json", "invalid JSON"},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x"} trailing)", "invalid JSON"},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x"} {})", "trailing content"},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x"} 1)", "invalid JSON"},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x",)", "invalid JSON"},
      {ApiKind::kCompletions, "[1,2]", "not a JSON object"},
      {ApiKind::kCompletions, R"({"prompt":"x"})", "model not found"},
      {ApiKind::kCompletions, R"({"model":3,"prompt":"x"})", "model must be a string"},
      {ApiKind::kCompletions, R"({"model":"m"})", "prompt is required"},
      {ApiKind::kCompletions, R"({"model":"m","prompt":""})", "prompt is required"},
      {ApiKind::kCompletions, R"({"model":"m","prompt":[]})", "prompt is required"},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","stream":"yes"})", "stream must be"},
      {ApiKind::kChatCompletions, R"({"model":"m"})", "messages"},
      {ApiKind::kChatCompletions, R"({"model":"m","messages":[]})", "messages"},
      {ApiKind::kEmbeddings, R"({"model":"m"})", "input is required"},
      {ApiKind::kResponses, R"({"model":"m","input":null})", "input is required"},
      {ApiKind::kConversations, R"({"model":"m"})", "items is required"},
      {ApiKind::kEmbeddings, R"({"model":"m","input":null })", "input is required"},
      {ApiKind::kConversations, R"({"model":"m","items" : null
})",
       "items is required"},
  };
  for (const auto& c : cases) {
    auto r = Parse(c.kind, c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos)
        << c.body << " -> " << r.status();
  }
}

TEST(ParseRequestTest, NullStreamIsFalse) {
  auto r = Parse(ApiKind::kCompletions, R"({"model":"m","prompt":"x","stream":null})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->stream);
}

TEST(ParseRequestTest, ParsesInPlaceWithPadding) {
  std::string body = R"({"model":"m","prompt":"x"})";
  size_t size = body.size();
  body.resize(size + ParsePaddingBytes());
  auto r = ParseRequest(ApiKind::kCompletions, std::string_view(body.data(), size), body.size());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "m");
}

TEST(ParseRequestTest, SpansExcludeTrailingWhitespace) {
  std::string body = "{\"model\" : \"m\" ,\n \"prompt\": \"p\"\t\n}";
  auto r = Parse(ApiKind::kCompletions, body);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model_token.In(body), "\"m\"");
  EXPECT_EQ(r->prompt.In(body), "\"p\"");
}

TEST(SpliceModelTest, ReplacesOnlyTheToken) {
  std::string body = R"({ "model" : "old", "prompt":"model old"})";
  auto r = Parse(ApiKind::kCompletions, body);
  ASSERT_TRUE(r.ok()) << r.status();
  std::string out = SpliceModel(body, r->model_token, "new\"x");
  EXPECT_EQ(out, R"({ "model" : "new\"x", "prompt":"model old"})");
  auto again = Parse(ApiKind::kCompletions, out);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->model, "new\"x");
}

}  // namespace
}  // namespace epp::request
