#include "scheduling/plugins/load_scorers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scheduling/plugins/cycle_data.h"
#include "testing/endpoints.h"

namespace epp::scheduling {
namespace {

using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TestEndpoints;

std::vector<double> ScoreAll(Scorer& s, const TestEndpoints& eps, CycleState* state = nullptr) {
  CycleState local;
  std::vector<double> scores(eps.all().size(), -1);
  s.Score(state ? *state : local, Request{}, eps.all(), scores);
  return scores;
}

template <typename T>
std::unique_ptr<T> Make(const std::string& yaml = "{}") {
  auto p = T::Create("s", YAML::Load(yaml));
  EXPECT_TRUE(p.ok()) << p.status();
  return std::unique_ptr<T>(static_cast<T*>(p->release()));
}

TEST(LoadScorersTest, QueueScorerMinMaxNormalises) {
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(3, 0));
  eps.Add(TestEndpoints::M(0, 0));
  eps.Add(TestEndpoints::M(10, 0));
  auto s = Make<QueueScorer>();
  EXPECT_EQ(s->Type(), "queue-scorer");
  EXPECT_THAT(ScoreAll(*s, eps), ElementsAre(DoubleEq(0.7), DoubleEq(1.0), DoubleEq(0.0)));
}

TEST(LoadScorersTest, QueueScorerAllEqualIsOne) {
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(4, 0));
  eps.Add(TestEndpoints::M(4, 0));
  EXPECT_THAT(ScoreAll(*Make<QueueScorer>(), eps), ElementsAre(1.0, 1.0));
  TestEndpoints one;
  one.Add(TestEndpoints::M(9, 0));
  EXPECT_THAT(ScoreAll(*Make<QueueScorer>(), one), ElementsAre(1.0));
}

TEST(LoadScorersTest, NeverScrapedEndpointReadsAsIdle) {
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(5, 0.5));
  eps.Add();  // no metrics yet: zeros
  EXPECT_THAT(ScoreAll(*Make<QueueScorer>(), eps), ElementsAre(0.0, 1.0));
  EXPECT_THAT(ScoreAll(*Make<KvCacheUtilizationScorer>(), eps), ElementsAre(0.5, 1.0));
}

TEST(LoadScorersTest, RunningRequestsSizeScorer) {
  TestEndpoints eps;
  datastore::Metrics a, b;
  a.running_requests_size = 8;
  b.running_requests_size = 2;
  eps.Add(a);
  eps.Add(b);
  EXPECT_THAT(ScoreAll(*Make<RunningRequestsSizeScorer>(), eps), ElementsAre(0.0, 1.0));
}

TEST(LoadScorersTest, KvCacheUtilizationScorerIsOneMinusUsage) {
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(0, 0.2));
  eps.Add(TestEndpoints::M(0, 0.85));
  EXPECT_THAT(ScoreAll(*Make<KvCacheUtilizationScorer>(), eps),
              ElementsAre(DoubleEq(0.8), DoubleEq(0.15)));
}

TEST(LoadScorersTest, LoadAwareScorerHalvesAndCapsAtThreshold) {
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(0, 0));
  eps.Add(TestEndpoints::M(32, 0));
  eps.Add(TestEndpoints::M(128, 0));
  eps.Add(TestEndpoints::M(500, 0));
  EXPECT_THAT(ScoreAll(*Make<LoadAwareScorer>(), eps), ElementsAre(0.5, DoubleEq(0.375), 0.0, 0.0));
  EXPECT_THAT(ScoreAll(*Make<LoadAwareScorer>("{threshold: 64}"), eps),
              ElementsAre(0.5, DoubleEq(0.25), 0.0, 0.0));
}

TEST(LoadScorersTest, TokenLoadScorerReadsInflightTokens) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  eps.Add();
  CycleState state;
  auto info = std::make_unique<InflightLoadInfo>();
  info->load[eps[1]] = {2, 500};
  info->load[eps[2]] = {9, 5000};
  state.Write(std::string(kInflightLoadKey), std::move(info));
  auto s = Make<TokenLoadScorer>("{queueThresholdTokens: 1000}");
  EXPECT_THAT(ScoreAll(*s, eps, &state), ElementsAre(1.0, 0.5, 0.0));
  ASSERT_EQ(s->RequiredProducers().size(), 1u);
  EXPECT_EQ(s->RequiredProducers()[0].type, "inflight-load-producer");
}

TEST(LoadScorersTest, ParametersAreChecked) {
  EXPECT_THAT(std::string(QueueScorer::Create("q", YAML::Load("{x: 1}")).status().message()),
              HasSubstr("x"));
  EXPECT_THAT(
      std::string(LoadAwareScorer::Create("l", YAML::Load("{threshold: 0}")).status().message()),
      HasSubstr("threshold"));
  EXPECT_THAT(std::string(TokenLoadScorer::Create("t", YAML::Load("{queueThresholdTokens: -1}"))
                              .status()
                              .message()),
              HasSubstr("queueThresholdTokens"));
}

}  // namespace
}  // namespace epp::scheduling
