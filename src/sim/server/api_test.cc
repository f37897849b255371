#include "sim/server/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace epp::sim::api {
namespace {

using ::testing::HasSubstr;

GenerationRequest MustParse(Endpoint ep, std::string_view body) {
  auto r = ParseGeneration(ep, body);
  if (auto* e = std::get_if<Error>(&r)) {
    ADD_FAILURE() << "unexpected error: " << e->message;
    return {};
  }
  return std::get<GenerationRequest>(r);
}

Error MustFail(Endpoint ep, std::string_view body) {
  auto r = ParseGeneration(ep, body);
  if (!std::holds_alternative<Error>(r)) {
    ADD_FAILURE() << "expected an error for " << body;
    return {};
  }
  return std::get<Error>(r);
}

TEST(ApiTest, CompletionFields) {
  auto r = MustParse(Endpoint::kCompletions,
                     R"({"model":"m","prompt":"abcdefgh","max_tokens":7,"stream":true,
                         "stream_options":{"include_usage":true},"ignore_eos":true,
                         "cache_salt":"s1","temperature":0.5,"n":1})");
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.prompt_tokens, Tokenize("abcdefgh"));
  EXPECT_EQ(r.prompt_text, "abcdefgh");
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_FALSE(r.continuous_usage);
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.cache_salt, "s1");
}

TEST(ApiTest, PromptShapes) {
  EXPECT_EQ(MustParse(Endpoint::kCompletions, R"({"prompt":[1,2,3]})").prompt_tokens,
            (std::vector<TokenId>{1, 2, 3}));
  EXPECT_EQ(MustParse(Endpoint::kCompletions, R"({"prompt":[[4,5]]})").prompt_tokens,
            (std::vector<TokenId>{4, 5}));
  EXPECT_EQ(MustParse(Endpoint::kCompletions, R"({"prompt":["abcd"]})").prompt_tokens,
            Tokenize("abcd"));
  EXPECT_EQ(MustParse(Endpoint::kCompletions, R"({"prompt":"x"})").max_tokens, -1);
}

TEST(ApiTest, ChatRendersMessagesWithTheTemplate) {
  auto r = MustParse(Endpoint::kChatCompletions,
                     R"({"model":"m","messages":[{"role":"system","content":"be brief"},
                         {"role":"user","content":[{"type":"text","text":"hi"},
                                                   {"type":"text","text":" there"}]}],
                         "max_completion_tokens":3})");
  EXPECT_EQ(r.prompt_text, RenderChat({{"system", "be brief"}, {"user", "hi there"}}));
  EXPECT_EQ(r.prompt_tokens, Tokenize(r.prompt_text));
  EXPECT_EQ(r.max_tokens, 3);
}

TEST(ApiTest, ErrorsNameTheField) {
  struct Case {
    Endpoint ep;
    std::string_view body;
    std::string_view message;
  };
  const Case cases[] = {
      {Endpoint::kCompletions, "{not json", "invalid JSON body"},
      {Endpoint::kCompletions, "[1]", "must be a JSON object"},
      {Endpoint::kCompletions, R"({"model":"m"})", "prompt: field required"},
      {Endpoint::kCompletions, R"({"prompt":5})", "prompt: expected a string"},
      {Endpoint::kCompletions, R"({"prompt":[]})", "prompt: must not be empty"},
      {Endpoint::kCompletions, R"({"prompt":""})", "prompt: must not be empty"},
      {Endpoint::kCompletions, R"({"prompt":["a","b"]})", "batched prompts (2 prompts)"},
      {Endpoint::kCompletions, R"({"prompt":[1,-2]})", "token ids must be integers"},
      {Endpoint::kCompletions, R"({"prompt":"a","max_tokens":0})",
       "max_tokens: must be at least 1, got 0"},
      {Endpoint::kCompletions, R"({"prompt":"a","max_tokens":"5"})",
       "max_tokens: expected an integer, got a string"},
      {Endpoint::kCompletions, R"({"prompt":"a","n":2})", "n: only n = 1"},
      {Endpoint::kCompletions, R"({"prompt":"a","stream":"yes"})", "stream: expected a boolean"},
      {Endpoint::kCompletions, R"({"prompt":"a","stream_options":{"include_usage":true}})",
       "stream_options: only allowed when stream is true"},
      {Endpoint::kCompletions, R"({"prompt":"a","model":3})", "model: expected a string"},
      {Endpoint::kChatCompletions, R"({"model":"m"})", "messages: field required"},
      {Endpoint::kChatCompletions, R"({"messages":[]})", "messages: must not be empty"},
      {Endpoint::kChatCompletions, R"({"messages":[{"content":"x"}]})",
       "messages[0].role: required string"},
      {Endpoint::kChatCompletions,
       R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
       "part type \"image_url\" is not supported"},
  };
  for (const auto& c : cases) {
    Error e = MustFail(c.ep, c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.type, "BadRequestError");
    EXPECT_THAT(e.message, HasSubstr(std::string(c.message))) << c.body;
  }
}

TEST(ApiTest, ErrorJsonHasVllmsNestedShape) {
  EXPECT_EQ(ErrorJson(NotFound("The model `x` does not exist.")),
            R"({"error":{"message":"The model `x` does not exist.","type":"NotFoundError",)"
            R"("param":null,"code":404}})");
}

ResponseMeta Meta(Endpoint ep) { return ResponseMeta{ep, "id-1", 1700000000, "m"}; }

TEST(ApiTest, ChatStreamChunksAsVllmFramesThem) {
  ResponseMeta m = Meta(Endpoint::kChatCompletions);
  EXPECT_EQ(ChatRoleChunk(m, nullptr),
            "data: {\"id\":\"id-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
            "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
            "\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
  EXPECT_EQ(StreamChunk(m, " the", "", nullptr),
            "data: {\"id\":\"id-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
            "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" the\"},"
            "\"logprobs\":null,\"finish_reason\":null}]}\n\n");
  EXPECT_THAT(StreamChunk(m, " end", "length", nullptr),
              HasSubstr("\"finish_reason\":\"length\",\"stop_reason\":null}]}\n\n"));
  EXPECT_EQ(UsageChunk(m, Usage{12, 2}),
            "data: {\"id\":\"id-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
            "\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":14,"
            "\"completion_tokens\":2}}\n\n");
  Usage u{3, 1};
  EXPECT_THAT(StreamChunk(m, "x", "", &u), HasSubstr(",\"usage\":{\"prompt_tokens\":3,"));
}

TEST(ApiTest, CompletionStreamChunksCarryNullFields) {
  ResponseMeta m = Meta(Endpoint::kCompletions);
  EXPECT_EQ(StreamChunk(m, " the", "", nullptr),
            "data: {\"id\":\"id-1\",\"object\":\"text_completion\",\"created\":1700000000,"
            "\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\" the\",\"logprobs\":null,"
            "\"finish_reason\":null,\"stop_reason\":null}],\"usage\":null}\n\n");
}

TEST(ApiTest, CompleteResponses) {
  EXPECT_EQ(CompleteResponse(Meta(Endpoint::kCompletions), "ab\"c", "stop", Usage{5, 3}),
            "{\"id\":\"id-1\",\"object\":\"text_completion\",\"created\":1700000000,"
            "\"model\":\"m\",\"choices\":[{\"index\":0,\"text\":\"ab\\\"c\",\"logprobs\":null,"
            "\"finish_reason\":\"stop\",\"stop_reason\":null,\"prompt_logprobs\":null}],"
            "\"usage\":{\"prompt_tokens\":5,\"total_tokens\":8,\"completion_tokens\":3}}");
  EXPECT_THAT(CompleteResponse(Meta(Endpoint::kChatCompletions), "hi", "length", Usage{5, 1}),
              HasSubstr("\"object\":\"chat.completion\""));
  EXPECT_THAT(CompleteResponse(Meta(Endpoint::kChatCompletions), "hi", "length", Usage{5, 1}),
              HasSubstr("\"message\":{\"role\":\"assistant\",\"content\":\"hi\","
                        "\"tool_calls\":[],\"reasoning_content\":null}"));
}

TEST(ApiTest, TokenTextIsFourBytesAndDeterministic) {
  for (int k = 0; k < 100; ++k) {
    EXPECT_EQ(TokenText(7, k).size(), 4u);
    EXPECT_EQ(TokenText(7, k), TokenText(7, k));
  }
  int differ = 0;
  for (int k = 0; k < 100; ++k) differ += TokenText(7, k) != TokenText(8, k);
  EXPECT_GT(differ, 50);
}

TEST(ApiTest, ModelsListsAdaptersWithTheirParent) {
  std::string j =
      ModelsJson({{"base", "/models/base", ""}, {"sql", "/loras/sql", "base"}}, 1700000000, 4096);
  EXPECT_THAT(j, HasSubstr("{\"id\":\"base\",\"object\":\"model\",\"created\":1700000000,"
                           "\"owned_by\":\"vllm\",\"root\":\"/models/base\",\"parent\":null,"
                           "\"max_model_len\":4096"));
  EXPECT_THAT(j, HasSubstr("{\"id\":\"sql\",\"object\":\"model\",\"created\":1700000000,"
                           "\"owned_by\":\"vllm\",\"root\":\"/loras/sql\",\"parent\":\"base\""));
}

TEST(ApiTest, TokenizeAndLoraBodies) {
  auto t = ParseTokenize(R"({"model":"m","prompt":"abcdefgh"})");
  ASSERT_TRUE(std::holds_alternative<TokenizeRequest>(t));
  EXPECT_EQ(std::get<TokenizeRequest>(t).tokens.size(), 2u);
  EXPECT_EQ(TokenizeResponseJson({1, 2}, 512),
            R"({"count":2,"max_model_len":512,"tokens":[1,2],"token_strs":null})");
  EXPECT_TRUE(std::holds_alternative<Error>(ParseTokenize(R"({"model":"m"})")));
  auto l = ParseLoraRequest(R"({"lora_name":"a","lora_path":"/p"})", true);
  ASSERT_TRUE(std::holds_alternative<LoraRequest>(l));
  EXPECT_EQ(std::get<LoraRequest>(l).path, "/p");
  auto missing = ParseLoraRequest(R"({"lora_name":"a"})", true);
  ASSERT_TRUE(std::holds_alternative<Error>(missing));
  EXPECT_THAT(std::get<Error>(missing).message, HasSubstr("lora_path"));
  EXPECT_TRUE(std::holds_alternative<LoraRequest>(ParseLoraRequest(R"({"lora_name":"a"})", false)));
}

}  // namespace
}  // namespace epp::sim::api
