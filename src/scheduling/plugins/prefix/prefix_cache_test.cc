// approx-prefix-cache-producer and prefix-cache-scorer, alone and built from config text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scheduling/plugins/prefix/approx_prefix_producer.h"
#include "scheduling/plugins/prefix/prefix_cache_scorer.h"
#include "testing/endpoints.h"
#include "testing/scheduler_from_yaml.h"

namespace epp::scheduling {
namespace {

using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TestEndpoints;

// A completions request whose prompt is `prompt` (the body holds it as a JSON string).
struct TestRequest {
  explicit TestRequest(std::string prompt, std::string model = "m", std::string salt = "") {
    body = "{\"prompt\":\"" + prompt + "\"}";
    parsed.prompt = {10, prompt.size() + 2};
    parsed.cache_salt = std::move(salt);
    this->model = std::move(model);
    req.body = body;
    req.parsed = &parsed;
    req.target_model = this->model;
  }
  std::string body, model;
  request::ParsedRequest parsed;
  Request req;
};

SchedulingResult ResultFor(EndpointRef e) {
  SchedulingResult r;
  r.primary_profile = "default";
  r.profile_results["default"].target_endpoints = {e};
  return r;
}

TEST(PrefixHashesTest, BlocksOfFourCharactersPerTokenWithATrailingPartialBlock) {
  std::string s(130, 'x');
  EXPECT_EQ(PrefixBlockHashes(s, "m", "", 64, 256).size(), 3u);
  EXPECT_TRUE(PrefixBlockHashes(std::string(63, 'x'), "m", "", 64, 256).empty());
  EXPECT_EQ(PrefixBlockHashes(std::string(64 * 300, 'x'), "m", "", 64, 256).size(), 256u);
}

TEST(PrefixHashesTest, ChainedAndSeededByModelAndSalt) {
  std::string a = std::string(128, 'a') + "tail one";
  std::string b = std::string(128, 'a') + "another tail";
  auto ha = PrefixBlockHashes(a, "m", "", 64, 256);
  auto hb = PrefixBlockHashes(b, "m", "", 64, 256);
  EXPECT_EQ(ha[0], hb[0]);
  EXPECT_EQ(ha[1], hb[1]);
  EXPECT_NE(ha[2], hb[2]);
  EXPECT_NE(PrefixBlockHashes(a, "other-model", "", 64, 256)[0], ha[0]);
  EXPECT_NE(PrefixBlockHashes(a, "m", "salt", 64, 256)[0], ha[0]);
  // Same block bytes after a different first block: the chain makes them differ.
  std::string c = std::string(64, 'z') + std::string(64, 'a');
  EXPECT_NE(PrefixBlockHashes(c, "m", "", 64, 256)[1], ha[1]);
}

class PrefixProducerTest : public ::testing::Test {
 protected:
  PrefixProducerTest() : producer_("p", PrefixParams{.auto_tune = false}) {
    eps_.Add();
    eps_.Add();
  }
  const PrefixMatchInfo* Produce(TestRequest& r) {
    state_ = std::make_unique<CycleState>();
    producer_.Produce(*state_, r.req, eps_.all());
    return state_->Read<PrefixMatchInfo>(kPrefixMatchKey);
  }
  void Route(TestRequest& r, EndpointRef e) {
    Produce(r);
    producer_.PreRequest(*state_, r.req, ResultFor(e));
  }
  TestEndpoints eps_;
  ApproxPrefixCacheProducer producer_;
  std::unique_ptr<CycleState> state_;
};

TEST_F(PrefixProducerTest, MatchesWhatWasRoutedBefore) {
  TestRequest first(std::string(256, 's') + "question 1");  // 5 blocks of 64
  const auto* info = Produce(first);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->total_blocks, 5);
  EXPECT_EQ(info->Matched(eps_[0]), 0);
  Route(first, eps_[0]);

  TestRequest again(std::string(256, 's') + "question 1");
  info = Produce(again);
  EXPECT_EQ(info->Matched(eps_[0]), 5);
  EXPECT_DOUBLE_EQ(info->Fraction(eps_[0]), 1.0);
  EXPECT_EQ(info->Matched(eps_[1]), 0);

  TestRequest shared(std::string(256, 's') + "a different question");  // 5 blocks, 4 shared
  info = Produce(shared);
  EXPECT_EQ(info->total_blocks, 5);
  EXPECT_EQ(info->Matched(eps_[0]), 4);
}

TEST_F(PrefixProducerTest, ShortPromptsHaveNoBlocks) {
  TestRequest tiny("hello");
  const auto* info = Produce(tiny);
  EXPECT_EQ(info->total_blocks, 0);
  Route(tiny, eps_[0]);
  EXPECT_EQ(producer_.index().entries(), 0u);
}

TEST_F(PrefixProducerTest, EndpointsThatLeaveThePoolAreForgotten) {
  TestRequest r(std::string(200, 'q'));
  Route(r, eps_[0]);
  EXPECT_EQ(producer_.index().servers(), 1u);
  datastore::Snapshot pool;
  pool.version = 7;  // e0 is gone, e1 remains
  pool.endpoints.push_back(std::make_shared<datastore::Endpoint>(*eps_[1]));
  r.req.pool = &pool;
  Produce(r);
  EXPECT_EQ(producer_.index().servers(), 0u);
}

TEST(PrefixAutoTuneTest, BlockSizeAndCapacityFromCacheConfig) {
  TestEndpoints eps;
  datastore::Metrics m;
  m.cache_block_size = 32;  // 128 characters per block
  m.cache_num_gpu_blocks = 2;
  eps.Add(m);
  ApproxPrefixCacheProducer p("p", PrefixParams{});
  TestRequest r(std::string(300, 'a'));
  CycleState state;
  p.Produce(state, r.req, eps.all());
  const auto* info = state.Read<PrefixMatchInfo>(kPrefixMatchKey);
  EXPECT_EQ(info->block_tokens, 32);
  EXPECT_EQ(info->total_blocks, 3);  // 128 + 128 + 44
  p.PreRequest(state, r.req, ResultFor(eps[0]));
  EXPECT_EQ(p.index().entries(), 2u);  // capacity = num_gpu_blocks
}

std::vector<double> ScoreWith(PrefixCacheScorer& s, const TestEndpoints& eps,
                              std::unique_ptr<PrefixMatchInfo> info) {
  CycleState state;
  state.Write(std::string(kPrefixMatchKey), std::move(info));
  std::vector<double> scores(eps.all().size(), -1);
  s.Score(state, Request{}, eps.all(), scores);
  return scores;
}

TEST(PrefixCacheScorerTest, FractionModeIsMatchedOverTotal) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  eps.Add();
  auto info = std::make_unique<PrefixMatchInfo>();
  info->total_blocks = 4;
  info->matched_blocks = {{eps[0], 4}, {eps[1], 1}};
  auto created = PrefixCacheScorer::Create("prefix", YAML::Load("{}"));
  ASSERT_TRUE(created.ok());
  auto& s = static_cast<PrefixCacheScorer&>(**created);
  EXPECT_THAT(ScoreWith(s, eps, std::move(info)), ElementsAre(1.0, 0.25, 0.0));
  // No match info or no blocks: 0 everywhere.
  EXPECT_THAT(ScoreWith(s, eps, std::make_unique<PrefixMatchInfo>()), ElementsAre(0, 0, 0));
}

TEST(PrefixCacheScorerTest, LoadAwareModeTradesTheHitAgainstTheQueue) {
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(0, 0));  // holds the whole prompt, idle
  eps.Add(TestEndpoints::M(0, 0));  // holds nothing, idle
  eps.Add(TestEndpoints::M(2, 0));  // holds the whole prompt, two waiting
  auto info = std::make_unique<PrefixMatchInfo>();
  info->total_blocks = 9;  // P = 144 tokens, one block = 16
  info->block_tokens = 16;
  info->matched_blocks = {{eps[0], 9}, {eps[2], 9}};
  auto created =
      PrefixCacheScorer::Create("prefix", YAML::Load("{mode: load-aware, queueWeight: 1}"));
  ASSERT_TRUE(created.ok()) << created.status();
  auto& s = static_cast<PrefixCacheScorer&>(**created);
  // cost: e0 = 0 + 0 + 16; e1 = 144 + 16 = 160; e2 = 2 × 144 + 0 + 16 = 304.
  EXPECT_THAT(ScoreWith(s, eps, std::move(info)),
              ElementsAre(1.0, DoubleEq(16.0 / 160), DoubleEq(16.0 / 304)));
}

TEST(PrefixCacheScorerTest, ParametersGoToTheProducer) {
  auto created = PrefixCacheScorer::Create(
      "prefix", YAML::Load("{mode: load-aware, blockSizeTokens: 32, autoTune: false}"));
  ASSERT_TRUE(created.ok()) << created.status();
  auto reqs = dynamic_cast<ProducerConsumer&>(**created).RequiredProducers();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].type, "approx-prefix-cache-producer");
  EXPECT_EQ(reqs[0].parameters["blockSizeTokens"].as<int>(), 32);
  EXPECT_FALSE(reqs[0].parameters["mode"]);
}

TEST(PrefixCacheScorerTest, BadParametersNameTheField) {
  auto err = [](const char* yaml) {
    return std::string(PrefixCacheScorer::Create("p", YAML::Load(yaml)).status().message());
  };
  EXPECT_THAT(err("{mode: greedy}"), HasSubstr("mode"));
  EXPECT_THAT(err("{queueWeight: -1}"), HasSubstr("queueWeight"));
  EXPECT_THAT(err("{blockSize: 64}"), HasSubstr("blockSizeTokens"));
  EXPECT_THAT(err("{lruCapacity: 5}"), HasSubstr("lruCapacity"));
  EXPECT_THAT(err("{maxPrefixBlocksToMatch: 0}"), HasSubstr("maxPrefixBlocksToMatch"));
}

TEST(PrefixFromConfigTest, ScorerAloneGetsItsProducer) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefix-cache-scorer
  parameters: {blockSizeTokens: 8, autoTune: false}
)");
  ASSERT_TRUE(built.ok()) << built.status();
  const auto& hooks = built->scheduler->hooks();
  ASSERT_EQ(hooks.producers.size(), 1u);
  ASSERT_EQ(hooks.pre_request.size(), 1u);
  auto* producer =
      built->plugins->FindAs<ApproxPrefixCacheProducer>("approx-prefix-cache-producer");
  ASSERT_NE(producer, nullptr);

  // Route the same prompt twice over two endpoints: the second goes where the first went.
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  TestRequest r(std::string(100, 'p'));
  auto first = built->scheduler->Schedule(r.req, eps.all());
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 10; ++i) {
    auto again = built->scheduler->Schedule(r.req, eps.all());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->Primary().target_endpoints.front(), first->Primary().target_endpoints.front());
  }
}

TEST(PrefixFromConfigTest, DeclaredProducerIsNotDuplicated) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: approx-prefix-cache-producer
- type: prefix-cache-scorer
)");
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->scheduler->hooks().producers.size(), 1u);
}

TEST(PrefixFromConfigTest, ProducerTakesTheScorersParametersWhateverTheOrder) {
  // no-hit-lru-scorer needs the same producer without parameters and is declared first.
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: no-hit-lru-scorer
- type: prefix-cache-scorer
  parameters: {blockSizeTokens: 8, autoTune: false}
)");
  ASSERT_TRUE(built.ok()) << built.status();
  TestEndpoints eps;
  eps.Add();
  TestRequest r(std::string(40, 'p'));  // 40 characters: one 32-character block and a tail
  CycleState state;
  built->scheduler->hooks().producers.front()->Produce(state, r.req, eps.all());
  EXPECT_EQ(state.Read<PrefixMatchInfo>(kPrefixMatchKey)->total_blocks, 2);
}

}  // namespace
}  // namespace epp::scheduling
