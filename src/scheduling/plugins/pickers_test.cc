#include "scheduling/plugins/pickers.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace epp::scheduling {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kRuns = 200;

class PickersTest : public ::testing::Test {
 protected:
  PickersTest() {
    for (int i = 0; i < 4; ++i) {
      storage_.push_back(std::make_unique<datastore::Endpoint>(datastore::MakeEndpoint(
          "e" + std::to_string(i), "ns", "10.0.0." + std::to_string(i + 1), 8000)));
    }
  }
  EndpointRef E(int i) const { return storage_[i].get(); }

  std::vector<std::unique_ptr<datastore::Endpoint>> storage_;
  CycleState state_;
};

std::unique_ptr<Picker> MakePicker(decltype(&MaxScorePicker::Create) create,
                                   const std::string& params_yaml) {
  auto p = create("picker", YAML::Load(params_yaml));
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok() || dynamic_cast<Picker*>(p->get()) == nullptr) return nullptr;
  return std::unique_ptr<Picker>(static_cast<Picker*>(p->release()));
}

TEST_F(PickersTest, MaxScorePickerPicksTheMax) {
  auto picker = MakePicker(MaxScorePicker::Create, "{}");
  ASSERT_NE(picker, nullptr);
  EXPECT_EQ(picker->Type(), "max-score-picker");
  EXPECT_EQ(picker->Name(), "picker");
  for (int run = 0; run < 20; ++run) {
    auto got = picker->Pick(state_, {{E(0), 0.1}, {E(1), 0.9}, {E(2), 0.5}, {E(3), 0.0}});
    EXPECT_THAT(got, ElementsAre(E(1)));
  }
}

TEST_F(PickersTest, MaxScorePickerBreaksTiesRandomly) {
  auto picker = MakePicker(MaxScorePicker::Create, "{}");
  ASSERT_NE(picker, nullptr);
  std::set<EndpointRef> seen;
  for (int run = 0; run < kRuns; ++run) {
    auto got = picker->Pick(state_, {{E(0), 0.7}, {E(1), 0.2}, {E(2), 0.7}});
    ASSERT_EQ(got.size(), 1u);
    ASSERT_TRUE(got[0] == E(0) || got[0] == E(2)) << got[0]->name;
    seen.insert(got[0]);
  }
  EXPECT_EQ(seen.size(), 2u) << "both tied endpoints should be picked over " << kRuns << " runs";
}

TEST_F(PickersTest, MaxScorePickerReturnsOrderedFallbacks) {
  auto picker = MakePicker(MaxScorePicker::Create, "maxNumOfEndpoints: 3");
  ASSERT_NE(picker, nullptr);
  for (int run = 0; run < 20; ++run) {
    auto got = picker->Pick(state_, {{E(0), 0.1}, {E(1), 0.9}, {E(2), 0.5}, {E(3), 0.3}});
    EXPECT_THAT(got, ElementsAre(E(1), E(2), E(3)));
  }
  // Fewer candidates than maxNumOfEndpoints: all of them, best first.
  auto got = picker->Pick(state_, {{E(0), 0.2}, {E(1), 0.4}});
  EXPECT_THAT(got, ElementsAre(E(1), E(0)));
}

TEST_F(PickersTest, RandomPickerReturnsDistinctEndpoints) {
  auto picker = MakePicker(RandomPicker::Create, "maxNumOfEndpoints: 2");
  ASSERT_NE(picker, nullptr);
  EXPECT_EQ(picker->Type(), "random-picker");
  for (int run = 0; run < 50; ++run) {
    auto got = picker->Pick(state_, {{E(0), 0}, {E(1), 0}, {E(2), 0}});
    ASSERT_EQ(got.size(), 2u);
    EXPECT_NE(got[0], got[1]);
    for (EndpointRef e : got) EXPECT_TRUE(e == E(0) || e == E(1) || e == E(2));
  }
}

TEST_F(PickersTest, RandomPickerPicksEachOverManyRuns) {
  auto picker = MakePicker(RandomPicker::Create, "");
  ASSERT_NE(picker, nullptr);
  std::set<EndpointRef> seen;
  for (int run = 0; run < kRuns; ++run) {
    // Scores are ignored: the low-score endpoints must be picked too.
    auto got = picker->Pick(state_, {{E(0), 1.0}, {E(1), 0.0}, {E(2), 0.0}});
    ASSERT_EQ(got.size(), 1u);
    seen.insert(got[0]);
  }
  EXPECT_EQ(seen.size(), 3u);
}

TEST_F(PickersTest, ParameterValidation) {
  struct Case {
    const char* yaml;
    const char* want;
  } cases[] = {
      {"maxNumOfEndpoints: 0", "maxNumOfEndpoints"},
      {"maxNumOfEndpoints: -3", "maxNumOfEndpoints"},
      {"maxNumOfEndpoints: 1025", "maxNumOfEndpoints"},
      {"maxNumOfEndpoints: two", "maxNumOfEndpoints"},
      {"maxNumOfEndpoints: 1.5", "maxNumOfEndpoints"},
      {"maxEndpoints: 2", "unknown parameter \"maxEndpoints\""},
      {"[1, 2]", "parameters must be a map"},
  };
  for (auto create : {MaxScorePicker::Create, RandomPicker::Create}) {
    for (const auto& c : cases) {
      auto p = create("x", YAML::Load(c.yaml));
      ASSERT_FALSE(p.ok()) << c.yaml;
      EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << c.yaml;
      EXPECT_THAT(p.status().message(), HasSubstr(c.want)) << c.yaml;
    }
  }
}

TEST_F(PickersTest, ValidParameters) {
  for (auto create : {MaxScorePicker::Create, RandomPicker::Create}) {
    for (const char* yaml : {"", "{}", "maxNumOfEndpoints: 1", "maxNumOfEndpoints: 1024"}) {
      auto p = create("x", YAML::Load(yaml));
      EXPECT_TRUE(p.ok()) << yaml << ": " << p.status();
    }
    EXPECT_TRUE(create("x", YAML::Node()).ok());
  }
}

TEST_F(PickersTest, WeightedRandomPickerFollowsTheScores) {
  auto picker = MakePicker(WeightedRandomPicker::Create, "{}");
  ASSERT_NE(picker, nullptr);
  EXPECT_EQ(picker->Type(), "weighted-random-picker");
  std::map<EndpointRef, int> count;
  constexpr int kDraws = 4000;
  for (int run = 0; run < kDraws; ++run) {
    auto got = picker->Pick(state_, {{E(0), 3.0}, {E(1), 1.0}, {E(2), 0.0}});
    ASSERT_EQ(got.size(), 1u);
    ++count[got[0]];
  }
  // P(E0) = 3/4, P(E1) = 1/4, never E2; bounds at about 6 standard deviations.
  EXPECT_NEAR(count[E(0)], kDraws * 0.75, 170);
  EXPECT_NEAR(count[E(1)], kDraws * 0.25, 170);
  EXPECT_EQ(count[E(2)], 0);
}

TEST_F(PickersTest, WeightedRandomPickerWithAllZeroIsUniformAndRanksZeroLast) {
  auto picker = MakePicker(WeightedRandomPicker::Create, "{maxNumOfEndpoints: 3}");
  ASSERT_NE(picker, nullptr);
  std::set<EndpointRef> firsts;
  for (int run = 0; run < kRuns; ++run) {
    auto all_zero = picker->Pick(state_, {{E(0), 0}, {E(1), 0}, {E(2), 0}});
    ASSERT_EQ(all_zero.size(), 3u);
    firsts.insert(all_zero[0]);
    auto one_positive = picker->Pick(state_, {{E(0), 0}, {E(1), 0.5}, {E(2), 0}});
    EXPECT_EQ(one_positive[0], E(1));
  }
  EXPECT_EQ(firsts.size(), 3u);
}

}  // namespace
}  // namespace epp::scheduling
