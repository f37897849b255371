#include "scheduling/plugins/inflight_load_producer.h"

#include <gtest/gtest.h>

#include "testing/endpoints.h"

namespace epp::scheduling {
namespace {

using testing::TestEndpoints;

SchedulingResult ResultFor(EndpointRef e) {
  SchedulingResult r;
  r.primary_profile = "default";
  r.profile_results["default"].target_endpoints = {e};
  return r;
}

TEST(InflightLoadProducerTest, CountsRoutedRequestsUntilTheyComplete) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  InflightLoadProducer p("inflight");
  request::ParsedRequest parsed;
  parsed.prompt = {0, 400};  // 400 prompt bytes ≈ 100 tokens
  Request req;
  req.parsed = &parsed;
  for (uint64_t id = 1; id <= 3; ++id) {
    req.id = id;
    CycleState s;
    p.PreRequest(s, req, ResultFor(eps[id == 3 ? 1 : 0]));
  }
  CycleState state;
  p.Produce(state, req, eps.all());
  const auto* info = state.Read<InflightLoadInfo>(kInflightLoadKey);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->request_tokens, 100);
  EXPECT_EQ(info->Of(eps[0]).requests, 2);
  EXPECT_EQ(info->Of(eps[0]).tokens, 200);
  EXPECT_EQ(info->Of(eps[1]).requests, 1);

  p.RequestComplete(1, eps[0]->Key());
  p.RequestComplete(1, eps[0]->Key());  // a second report of the same request changes nothing
  EXPECT_EQ(p.LoadOf(eps[0]->Key()).requests, 1);
  p.RequestComplete(2, eps[0]->Key());
  p.RequestComplete(3, eps[1]->Key());
  EXPECT_EQ(p.LoadOf(eps[0]->Key()).requests, 0);
  EXPECT_EQ(p.LoadOf(eps[1]->Key()).tokens, 0);
  p.RequestComplete(99, "ns/unknown");  // never routed: ignored
}

TEST(InflightLoadProducerTest, HeaderOnlyRequestsCountZeroTokens) {
  Request req;
  EXPECT_EQ(EstimatePromptTokens(req), 0);
}

}  // namespace
}  // namespace epp::scheduling
