// prefix-cache-affinity-filter: stickiness, the TTFT gate, exploration, parameters, and the
// filter built from config text.
#include "scheduling/plugins/prefix_cache_affinity_filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scheduling/plugins/cycle_data.h"
#include "testing/endpoints.h"
#include "testing/scheduler_from_yaml.h"

namespace epp::scheduling {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::TestEndpoints;

constexpr int64_t kRate = 15928;  // default peakPrefillThroughput: tokens per second

std::unique_ptr<PrefixCacheAffinityFilter> Make(const std::string& yaml) {
  auto p = PrefixCacheAffinityFilter::Create("f", YAML::Load(yaml));
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return nullptr;
  return std::unique_ptr<PrefixCacheAffinityFilter>(
      static_cast<PrefixCacheAffinityFilter*>(p->release()));
}

TEST(PrefixCacheAffinityFilterTest, Table) {
  TestEndpoints eps;
  for (int i = 0; i < 3; ++i) eps.Add();
  struct Case {
    const char* name;
    std::string params;  // explorationProbability 0 is added
    bool has_match;
    std::vector<int> matched;  // blocks of 10, per endpoint
    bool has_load;
    std::vector<int64_t> tokens;  // in flight, per endpoint
    std::vector<size_t> want;
  } cases[] = {
      {"sticky at and above the threshold", "", true, {9, 8, 5}, true, {0, 0, 0}, {0, 1}},
      {"none sticky: all", "", true, {7, 0, 5}, true, {0, 0, 0}, {0, 1, 2}},
      {"all sticky: all", "", true, {10, 9, 8}, true, {0, 0, 0}, {0, 1, 2}},
      {"all equal: all", "", true, {3, 3, 3}, true, {5, 5, 5}, {0, 1, 2}},
      // Sticky best 10 s, other 0 s: 10000 ms > 5000 ms.
      {"penalty too high: all", "", true, {9, 9, 0}, true, {10 * kRate, 20 * kRate, 0}, {0, 1, 2}},
      // Sticky best exactly 5 s more than the other: not more than the limit.
      {"penalty at the limit: sticky",
       "",
       true,
       {9, 9, 0},
       true,
       {5 * kRate, 20 * kRate, 0},
       {0, 1}},
      // Sticky best 10 s, other best 6 s: 4000 ms.
      {"other endpoint loaded too: sticky",
       "",
       true,
       {9, 0, 0},
       true,
       {10 * kRate, 6 * kRate, 8 * kRate},
       {0}},
      {"the best sticky counts, not the worst",
       "",
       true,
       {9, 9, 0},
       true,
       {30 * kRate, 1 * kRate, 0},
       {0, 1}},
      {"no load data: sticky", "", true, {9, 0, 0}, false, {}, {0}},
      {"no prefix data: all", "", false, {}, true, {0, 0, 0}, {0, 1, 2}},
      {"threshold 0.85", "affinityThreshold: 0.85,", true, {9, 8, 5}, true, {0, 0, 0}, {0}},
      {"larger penalty allowed",
       "maxTTFTPenaltyMs: 20000,",
       true,
       {9, 0, 0},
       true,
       {15 * kRate, 0, 0},
       {0}},
      // 10,000 tokens in flight at 1,000 tokens/s: 10 s > 5 s.
      {"prefill rate",
       "peakPrefillThroughput: 1000,",
       true,
       {9, 0, 0},
       true,
       {10'000, 0, 0},
       {0, 1, 2}},
  };
  for (const auto& c : cases) {
    auto f = Make("{" + c.params + " explorationProbability: 0}");
    ASSERT_NE(f, nullptr) << c.name;
    CycleState state;
    if (c.has_match) {
      auto info = std::make_unique<PrefixMatchInfo>();
      info->total_blocks = 10;
      for (size_t i = 0; i < c.matched.size(); ++i) info->matched_blocks[eps[i]] = c.matched[i];
      state.Write(std::string(kPrefixMatchKey), std::move(info));
    }
    if (c.has_load) {
      auto info = std::make_unique<InflightLoadInfo>();
      for (size_t i = 0; i < c.tokens.size(); ++i) info->load[eps[i]] = {1, c.tokens[i]};
      state.Write(std::string(kInflightLoadKey), std::move(info));
    }
    std::vector<EndpointRef> want;
    for (size_t i : c.want) want.push_back(eps[i]);
    EXPECT_THAT(f->FilterEndpoints(state, Request{}, eps.all()), ElementsAreArray(want)) << c.name;
  }
}

TEST(PrefixCacheAffinityFilterTest, EmptyCandidatesAndShortPrompts) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  auto f = Make("{explorationProbability: 0}");
  CycleState state;
  auto info = std::make_unique<PrefixMatchInfo>();
  info->total_blocks = 0;  // prompt shorter than one block: fraction 0 everywhere
  state.Write(std::string(kPrefixMatchKey), std::move(info));
  EXPECT_TRUE(f->FilterEndpoints(state, Request{}, {}).empty());
  EXPECT_THAT(f->FilterEndpoints(state, Request{}, eps.all()), ElementsAre(eps[0], eps[1]));
}

TEST(PrefixCacheAffinityFilterTest, ExplorationPassesEveryCandidate) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  CycleState state;
  auto info = std::make_unique<PrefixMatchInfo>();
  info->total_blocks = 4;
  info->matched_blocks[eps[0]] = 4;
  state.Write(std::string(kPrefixMatchKey), std::move(info));
  auto always = Make("{explorationProbability: 1}");
  EXPECT_THAT(always->FilterEndpoints(state, Request{}, eps.all()), ElementsAre(eps[0], eps[1]));
  auto half = Make("{explorationProbability: 0.5}");
  int all = 0;
  constexpr int kRuns = 4000;
  for (int i = 0; i < kRuns; ++i) {
    all += half->FilterEndpoints(state, Request{}, eps.all()).size() == 2 ? 1 : 0;
  }
  EXPECT_GT(all, kRuns * 4 / 10);
  EXPECT_LT(all, kRuns * 6 / 10);
}

TEST(PrefixCacheAffinityFilterTest, Parameters) {
  auto f = Make("{}");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->Type(), "prefix-cache-affinity-filter");
  EXPECT_EQ(f->params().affinity_threshold, 0.80);
  EXPECT_EQ(f->params().exploration_probability, 0.01);
  EXPECT_EQ(f->params().max_ttft_penalty_ms, 5000);
  EXPECT_EQ(f->params().peak_prefill_throughput, 15928);
  auto req = f->RequiredProducers();
  ASSERT_EQ(req.size(), 2u);
  EXPECT_EQ(req[0].type, "approx-prefix-cache-producer");
  EXPECT_EQ(req[1].type, "inflight-load-producer");
  EXPECT_NE(Make("{inFlightLoadProducerName: inflight-load-producer}"), nullptr);
  struct Bad {
    const char* yaml;
    const char* field;
  } bad[] = {
      {"{affinityThreshold: 0}", "affinityThreshold"},
      {"{affinityThreshold: 1.1}", "affinityThreshold"},
      {"{explorationProbability: -0.1}", "explorationProbability"},
      {"{explorationProbability: 2}", "explorationProbability"},
      {"{maxTTFTPenaltyMs: -1}", "maxTTFTPenaltyMs"},
      {"{peakPrefillThroughput: 0}", "peakPrefillThroughput"},
      {"{prefillRate: 5}", "prefillRate"},
  };
  for (const auto& b : bad) {
    auto got = PrefixCacheAffinityFilter::Create("f", YAML::Load(b.yaml));
    ASSERT_FALSE(got.ok()) << b.yaml;
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(b.field)) << b.yaml;
  }
}

TEST(PrefixCacheAffinityFromConfigTest, FilterGetsBothProducers) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefix-cache-affinity-filter
  parameters: {explorationProbability: 0}
- type: token-load-scorer
schedulingProfiles:
- name: prefill
  plugins:
  - pluginRef: prefix-cache-affinity-filter
  - pluginRef: token-load-scorer
)");
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->scheduler->hooks().producers.size(), 2u);
  EXPECT_NE(built->plugins->Find("approx-prefix-cache-producer"), nullptr);
  EXPECT_NE(built->plugins->Find("inflight-load-producer"), nullptr);
}

}  // namespace
}  // namespace epp::scheduling
