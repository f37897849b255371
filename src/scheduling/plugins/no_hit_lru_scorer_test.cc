// no-hit-lru-scorer: cold/warm detection, recency ranks, the LRU bound, parameters, and the
// scorer built from config text.
#include "scheduling/plugins/no_hit_lru_scorer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "scheduling/plugins/cycle_data.h"
#include "testing/endpoints.h"
#include "testing/scheduler_from_yaml.h"

namespace epp::scheduling {
namespace {

using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TestEndpoints;

// A cycle state with prefix data: `total` prompt blocks and the given matches.
CycleState PrefixState(int total, std::vector<std::pair<EndpointRef, int>> matches = {}) {
  CycleState state;
  auto info = std::make_unique<PrefixMatchInfo>();
  info->total_blocks = total;
  for (auto [e, n] : matches) info->matched_blocks[e] = n;
  state.Write(std::string(kPrefixMatchKey), std::move(info));
  return state;
}

SchedulingResult ResultFor(EndpointRef e) {
  SchedulingResult r;
  r.primary_profile = "default";
  r.profile_results["default"].target_endpoints = {e};
  return r;
}

// Routes one cold request to `e`.
void UseCold(NoHitLruScorer& s, EndpointRef e) {
  CycleState cold = PrefixState(4);
  s.PreRequest(cold, Request{}, ResultFor(e));
}

std::vector<double> Scores(NoHitLruScorer& s, std::span<const EndpointRef> cands,
                           CycleState state = PrefixState(4)) {
  std::vector<double> out(cands.size(), -1);
  s.Score(state, Request{}, cands, out);
  return out;
}

TEST(NoHitLruScorerTest, ColdOrWarm) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  struct Case {
    const char* name;
    bool has_info;
    int total;
    std::vector<std::pair<EndpointRef, int>> matches;
    bool cold;
  } cases[] = {
      {"no prefix data", false, 0, {}, true},
      {"prompt shorter than a block", true, 0, {}, true},
      {"no matches", true, 8, {}, true},
      {"zero matches recorded", true, 8, {{eps[0], 0}, {eps[1], 0}}, true},
      {"one endpoint has a block", true, 8, {{eps[0], 0}, {eps[1], 1}}, false},
      {"full match", true, 8, {{eps[0], 8}}, false},
  };
  for (const auto& c : cases) {
    CycleState state = c.has_info ? PrefixState(c.total, c.matches) : CycleState();
    EXPECT_EQ(IsColdRequest(state), c.cold) << c.name;
  }
}

TEST(NoHitLruScorerTest, WarmRequestsScoreHalfEverywhereAndAreNotRecorded) {
  TestEndpoints eps;
  for (int i = 0; i < 3; ++i) eps.Add();
  NoHitLruScorer s("s", 1024);
  UseCold(s, eps[0]);
  CycleState warm = PrefixState(4, {{eps[2], 3}});
  std::vector<double> out(3, -1);
  s.Score(warm, Request{}, eps.all(), out);
  EXPECT_THAT(out, ElementsAre(0.5, 0.5, 0.5));
  s.PreRequest(warm, Request{}, ResultFor(eps[1]));
  EXPECT_EQ(s.remembered(), 1u);
}

TEST(NoHitLruScorerTest, ColdRanksTable) {
  struct Case {
    const char* name;
    size_t endpoints;
    std::vector<size_t> used;  // cold requests routed, oldest first
    std::vector<size_t> candidates;
    std::vector<double> want;
  } cases[] = {
      {"nothing recorded: all equal", 3, {}, {0, 1, 2}, {1, 1, 1}},
      // Ranks: e2 never (0), e0 (1), e1 (2); 1 − rank / 2.
      {"one never used", 3, {0, 1}, {0, 1, 2}, {0.5, 0, 1}},
      // Least to most recent: e3, e1, e0, e2; 1 − rank / 3.
      {"all used", 4, {3, 1, 0, 2}, {0, 1, 2, 3}, {1.0 / 3, 2.0 / 3, 0, 1}},
      {"used twice counts the last use", 3, {0, 1, 0}, {0, 1, 2}, {0, 0.5, 1}},
      // Never used e2 and e3 share rank 0; e0 rank 2, e1 rank 3.
      {"two never used", 4, {0, 1}, {0, 1, 2, 3}, {1.0 / 3, 0, 1, 1}},
      {"ranked among the candidates only", 4, {0, 1, 2, 3}, {3, 0}, {0, 1}},
      {"single used candidate", 2, {1}, {1}, {1}},
      {"no candidates", 2, {0}, {}, {}},
  };
  for (const auto& c : cases) {
    TestEndpoints eps;
    for (size_t i = 0; i < c.endpoints; ++i) eps.Add();
    NoHitLruScorer s("s", 1024);
    for (size_t i : c.used) UseCold(s, eps[i]);
    std::vector<EndpointRef> cands;
    for (size_t i : c.candidates) cands.push_back(eps[i]);
    auto got = Scores(s, cands);
    ASSERT_EQ(got.size(), c.want.size()) << c.name;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_THAT(got[i], DoubleEq(c.want[i])) << c.name << " #" << i;
    }
  }
}

TEST(NoHitLruScorerTest, ColdWithoutPrefixDataStillRanks) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  NoHitLruScorer s("s", 1024);
  CycleState none;
  s.PreRequest(none, Request{}, ResultFor(eps[0]));
  EXPECT_THAT(Scores(s, eps.all(), CycleState()), ElementsAre(0, 1));
}

TEST(NoHitLruScorerTest, ForgetsBeyondLruSize) {
  TestEndpoints eps;
  for (int i = 0; i < 3; ++i) eps.Add();
  NoHitLruScorer s("s", 2);
  UseCold(s, eps[0]);
  UseCold(s, eps[1]);
  UseCold(s, eps[2]);  // e0 forgotten: counts as never used
  EXPECT_EQ(s.remembered(), 2u);
  EXPECT_THAT(Scores(s, eps.all()), ElementsAre(1, 0.5, 0));
}

TEST(NoHitLruScorerTest, Parameters) {
  auto p = NoHitLruScorer::Create("n", YAML::Load("{}"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->Type(), "no-hit-lru-scorer");
  auto* s = dynamic_cast<NoHitLruScorer*>(p->get());
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->RequiredProducers().size(), 1u);
  EXPECT_EQ(s->RequiredProducers()[0].type, "approx-prefix-cache-producer");
  EXPECT_TRUE(NoHitLruScorer::Create("n", YAML::Load("{lruSize: 2048, prefixPluginName: p, "
                                                     "prefixPluginType: prefix-cache-scorer}"))
                  .ok());
  for (auto [yaml, field] :
       {std::pair{"{lruSize: 0}", "lruSize"}, std::pair{"{lruSize: many}", "lruSize"},
        std::pair{"{size: 3}", "size"}}) {
    auto got = NoHitLruScorer::Create("n", YAML::Load(yaml));
    ASSERT_FALSE(got.ok()) << yaml;
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(field)) << yaml;
  }
}

TEST(NoHitLruFromConfigTest, ColdRequestsVisitEveryEndpointInTurn) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: no-hit-lru-scorer
)");
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(built->scheduler->hooks().producers.size(), 1u);  // approx-prefix-cache-producer
  EXPECT_EQ(built->scheduler->hooks().pre_request.size(), 2u);
  TestEndpoints eps;
  for (int i = 0; i < 3; ++i) eps.Add();
  // Header-only requests hash no prompt: every one is cold.
  std::set<EndpointRef> seen;
  for (int i = 0; i < 3; ++i) {
    auto r = built->scheduler->Schedule(Request{}, eps.all());
    ASSERT_TRUE(r.ok());
    seen.insert(r->Primary().target_endpoints.front());
  }
  EXPECT_EQ(seen.size(), 3u);
}

}  // namespace
}  // namespace epp::scheduling
