#include "scheduling/plugins/single_profile_handler.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduling/plugins/pickers.h"

namespace epp::scheduling {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class SingleProfileHandlerTest : public ::testing::Test {
 protected:
  SingleProfileHandlerTest() : picker_("picker", 1), handler_("handler") {
    profiles_["only"] = std::make_unique<SchedulerProfile>("only", std::vector<Filter*>{},
                                                           std::vector<WeightedScorer>{}, &picker_);
  }

  MaxScorePicker picker_;
  SingleProfileHandler handler_;
  std::map<std::string, std::unique_ptr<SchedulerProfile>> profiles_;
  CycleState state_;
  Request request_;
};

TEST_F(SingleProfileHandlerTest, PicksTheOnlyProfileOnceThenNone) {
  EXPECT_EQ(handler_.Type(), "single-profile-handler");
  auto first = handler_.PickProfiles(state_, request_, profiles_, {}, {});
  EXPECT_THAT(first, ElementsAre(profiles_.at("only").get()));

  std::map<std::string, ProfileResult> results;
  results["only"] = ProfileResult{};
  EXPECT_TRUE(handler_.PickProfiles(state_, request_, profiles_, results, {}).empty());
  // A failed run is not retried either.
  EXPECT_TRUE(handler_.PickProfiles(state_, request_, profiles_, {}, {"only"}).empty());
  // No profiles: nothing to run.
  EXPECT_TRUE(handler_.PickProfiles(state_, request_, {}, {}, {}).empty());
}

TEST_F(SingleProfileHandlerTest, ProcessResultsSetsPrimary) {
  auto endpoint = datastore::MakeEndpoint("a", "ns", "10.0.0.1", 8000);
  std::map<std::string, ProfileResult> results;
  results["only"].target_endpoints = {&endpoint};
  auto r = handler_.ProcessResults(state_, request_, results);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->primary_profile, "only");
  EXPECT_THAT(r->Primary().target_endpoints, ElementsAre(&endpoint));
}

TEST_F(SingleProfileHandlerTest, ProcessResultsWithoutResultFails) {
  auto r = handler_.ProcessResults(state_, request_, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_F(SingleProfileHandlerTest, DrivesAScheduler) {
  std::vector<datastore::Endpoint> eps = {datastore::MakeEndpoint("a", "ns", "10.0.0.1", 1)};
  std::vector<EndpointRef> candidates = {&eps[0]};
  Scheduler scheduler(&handler_, std::move(profiles_));
  auto r = scheduler.Schedule(request_, candidates);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->primary_profile, "only");
  EXPECT_THAT(r->Primary().target_endpoints, ElementsAre(&eps[0]));
}

TEST(SingleProfileHandlerCreateTest, Parameters) {
  for (const char* yaml : {"", "{}", "~"}) {
    auto p = SingleProfileHandler::Create("h", YAML::Load(yaml));
    ASSERT_TRUE(p.ok()) << yaml << ": " << p.status();
    EXPECT_EQ((*p)->Name(), "h");
    EXPECT_NE(dynamic_cast<ProfileHandler*>(p->get()), nullptr);
  }
  auto bad = SingleProfileHandler::Create("h", YAML::Load("foo: 1"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("unknown parameter \"foo\""));
}

}  // namespace
}  // namespace epp::scheduling
