#include "scheduling/plugins/lora_affinity_scorer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/endpoints.h"

namespace epp::scheduling {
namespace {

using ::testing::ElementsAre;
using testing::TestEndpoints;

std::vector<double> ScoreAll(const TestEndpoints& eps, std::string_view model) {
  LoraAffinityScorer s("lora");
  CycleState state;
  Request req;
  req.target_model = model;
  std::vector<double> scores(eps.all().size(), -1);
  s.Score(state, req, eps.all(), scores);
  return scores;
}

TEST(LoraAffinityScorerTest, ActiveThenRoomThenWaitingThenNothing) {
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(0, 0, {"sql"}, {}, 2));     // active: 1.0
  eps.Add(TestEndpoints::M(0, 0, {"a"}, {}, 2));       // room for one more: 0.8
  eps.Add(TestEndpoints::M(0, 0, {"a"}, {"sql"}, 2));  // full, sql waiting: 0.6
  eps.Add(TestEndpoints::M(0, 0, {"a"}, {"b"}, 2));    // full, not there: 0
  EXPECT_THAT(ScoreAll(eps, "sql"), ElementsAre(1.0, 0.8, 0.6, 0.0));
}

TEST(LoraAffinityScorerTest, CapacityIsCheckedBeforeWaiting) {
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(0, 0, {}, {"sql"}, 4));  // waiting but room: 0.8, as the reference
  EXPECT_THAT(ScoreAll(eps, "sql"), ElementsAre(0.8));
}

TEST(LoraAffinityScorerTest, UnknownSlotsMeanNoRoom) {
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(0, 0, {}, {}, 0));  // no lora_requests_info: max_lora unknown
  EXPECT_THAT(ScoreAll(eps, "base-model"), ElementsAre(0.0));
}

}  // namespace
}  // namespace epp::scheduling
