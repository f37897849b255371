#include "loadgen/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "simdjson.h"

namespace epp::loadgen {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ParseTargetTest, AcceptsHostPortForms) {
  struct Case {
    std::string_view url;
    std::string host;
    uint16_t port;
  };
  const Case kCases[] = {
      {"http://127.0.0.1:8000", "127.0.0.1", 8000},
      {"http://localhost:9/", "localhost", 9},
      {"http://[::1]:8080", "::1", 8080},
      {"http://gateway.example", "gateway.example", 80},
      {"http://[::1]", "::1", 80},
  };
  for (const Case& c : kCases) {
    auto t = ParseTarget(c.url);
    ASSERT_TRUE(t.ok()) << c.url << ": " << t.status();
    EXPECT_EQ(t->host, c.host);
    EXPECT_EQ(t->port, c.port);
  }
}

TEST(ParseTargetTest, RejectsOtherForms) {
  for (std::string_view bad : {"127.0.0.1:8000", "https://x:1", "http://", "http://x:1/v1",
                               "http://x:port", "http://x:0", "http://x:70000"}) {
    auto t = ParseTarget(bad);
    EXPECT_FALSE(t.ok()) << bad;
    EXPECT_THAT(std::string(t.status().message()), StartsWith("--target: ")) << bad;
  }
}

TEST(ParseHeaderTest, SplitsAtTheFirstColonAndTrims) {
  auto h = ParseHeader("x-gateway-inference-objective: premium:gold ");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->first, "x-gateway-inference-objective");
  EXPECT_EQ(h->second, "premium:gold");
  EXPECT_FALSE(ParseHeader("no-colon").ok());
  EXPECT_FALSE(ParseHeader(": v").ok());
  EXPECT_FALSE(ParseHeader("bad name: v").ok());
  EXPECT_FALSE(ParseHeader(std::string("x: a\r\nInjected: 1")).ok());
}

TEST(ParseSecondsTest, TakesSecondsOrGoDurations) {
  EXPECT_EQ(*ParseSeconds("--duration", "2.5"), 2.5);
  EXPECT_EQ(*ParseSeconds("--duration", "0"), 0);
  EXPECT_EQ(*ParseSeconds("--duration", "90s"), 90);
  EXPECT_EQ(*ParseSeconds("--duration", "1m30s"), 90);
  EXPECT_DOUBLE_EQ(*ParseSeconds("--timeout", "250ms"), 0.25);
  for (std::string_view bad : {"", "-1", "5 s", "inf", "nan", "1d"}) {
    auto s = ParseSeconds("--timeout", bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_THAT(std::string(s.status().message()), StartsWith("--timeout: "));
  }
}

LoadgenConfig Valid() {
  LoadgenConfig c;
  c.rate = 10;
  return c;
}

TEST(ValidateConfigTest, TheDefaultsWithALoadAreValid) {
  EXPECT_TRUE(ValidateConfig(Valid()).ok());
  LoadgenConfig closed;
  closed.concurrency = 4;
  EXPECT_TRUE(ValidateConfig(closed).ok());
  for (std::string w : {"multi-lora", "sharegpt", "long-prompt"}) {
    LoadgenConfig c = Valid();
    c.workload = w;
    EXPECT_TRUE(ValidateConfig(c).ok()) << w << ValidateConfig(c);
  }
}

TEST(ValidateConfigTest, ErrorsNameTheFlag) {
  struct Case {
    std::function<void(LoadgenConfig&)> change;
    std::string flag;
  };
  const Case kCases[] = {
      {[](LoadgenConfig& c) { c.rate = 0; }, "--rate"},
      {[](LoadgenConfig& c) { c.concurrency = 3; }, "--rate"},  // both
      {[](LoadgenConfig& c) { c.rate = -1; }, "--rate"},
      {[](LoadgenConfig& c) { c.rate = std::numeric_limits<double>::infinity(); }, "--rate"},
      {[](LoadgenConfig& c) {
         c.rate = 0;
         c.concurrency = -2;
       },
       "--concurrency"},
      {[](LoadgenConfig& c) { c.endpoint = "/v1/embeddings"; }, "--endpoint"},
      {[](LoadgenConfig& c) { c.workload = "chat"; }, "--workload"},
      {[](LoadgenConfig& c) { c.model.clear(); }, "--model"},
      {[](LoadgenConfig& c) { c.target = "ftp://x"; }, "--target"},
      {[](LoadgenConfig& c) { c.num_requests = -1; }, "--num-requests"},
      {[](LoadgenConfig& c) { c.duration_s = -1; }, "--duration"},
      {[](LoadgenConfig& c) { c.timeout_s = 0; }, "--timeout"},
      {[](LoadgenConfig& c) { c.shared_prefix.groups = 0; }, "--groups"},
      {[](LoadgenConfig& c) { c.shared_prefix.system_tokens = 1 << 27; }, "--system-tokens"},
      {[](LoadgenConfig& c) { c.shared_prefix.output_tokens = 0; }, "--output-tokens"},
      {[](LoadgenConfig& c) {
         c.workload = "multi-lora";
         c.multi_lora.tier_weights = {0, 0};
       },
       "--adapter-weights"},
      {[](LoadgenConfig& c) {
         c.workload = "multi-lora";
         c.multi_lora.tier_weights = {60, -1};
       },
       "--adapter-weights"},
      {[](LoadgenConfig& c) {
         c.workload = "sharegpt";
         c.sharegpt.max_prompt_tokens = 2;
       },
       "--max-input-tokens"},
      {[](LoadgenConfig& c) {
         c.workload = "sharegpt";
         c.sharegpt.output_tokens_sigma = -1;
       },
       "--output-tokens-sigma"},
      {[](LoadgenConfig& c) {
         c.headers = {{"a b", "c"}};
       },
       "--header"},
  };
  for (const Case& k : kCases) {
    LoadgenConfig c = Valid();
    k.change(c);
    absl::Status st = ValidateConfig(c);
    EXPECT_FALSE(st.ok()) << k.flag;
    EXPECT_THAT(std::string(st.message()), StartsWith(k.flag + ": ")) << st;
  }
}

TEST(ConfigTest, TheModelGoesIntoTheSelectedSpec) {
  LoadgenConfig c = Valid();
  c.model = "m1";
  EXPECT_EQ(std::get<SharedPrefixSpec>(SelectedSpec(c)).model, "m1");
  c.workload = "sharegpt";
  EXPECT_EQ(std::get<NoSharingSpec>(SelectedSpec(c)).model, "m1");
  c.workload = "long-prompt";
  EXPECT_EQ(std::get<LongPromptSpec>(SelectedSpec(c)).model, "m1");
  c.workload = "multi-lora";
  EXPECT_TRUE(std::holds_alternative<MultiLoraSpec>(SelectedSpec(c)));
}

TEST(ConfigTest, WithoutALimitARunIs100Requests) {
  LoadgenConfig c = Valid();
  EXPECT_EQ(RequestLimit(c), 100);
  c.duration_s = 5;
  EXPECT_EQ(RequestLimit(c), 0);
  c.num_requests = 7;
  EXPECT_EQ(RequestLimit(c), 7);
}

TEST(ConfigTest, LoadShapeAndJsonEcho) {
  LoadgenConfig c = Valid();
  c.headers = {{"x-gateway-inference-objective", "a\"b"}};
  EXPECT_EQ(LoadShape(c), "poisson 10 req/s");
  simdjson::dom::parser parser;
  for (std::string w : {"shared-prefix", "multi-lora", "sharegpt", "long-prompt"}) {
    c.workload = w;
    std::string json = ConfigJson(c);
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
    EXPECT_EQ(std::string_view(doc["workload"]), w);
    EXPECT_EQ(std::string_view(doc["load"]["arrival"]), "poisson");
    EXPECT_EQ(int64_t(doc["num_requests"]), 100);
    EXPECT_EQ(std::string_view(doc["headers"].at(0).at(1)), "a\"b");
  }
  c.rate = 0;
  c.concurrency = 8;
  EXPECT_EQ(LoadShape(c), "closed loop, concurrency 8");
  EXPECT_THAT(ConfigJson(c), HasSubstr("\"load\":{\"mode\":\"closed\",\"concurrency\":8}"));
}

}  // namespace
}  // namespace epp::loadgen
