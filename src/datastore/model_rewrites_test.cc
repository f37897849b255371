#include "datastore/model_rewrites.h"

#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace epp::datastore {
namespace {

using ::testing::HasSubstr;

ModelRewriteRule Rule(std::vector<std::string> matches, std::vector<ModelRewriteTarget> targets) {
  return ModelRewriteRule{std::move(matches), std::move(targets)};
}

ModelRewriteTarget T(std::string model, uint32_t weight = 0) {
  return ModelRewriteTarget{std::move(model), weight};
}

TEST(ValidateModelRewriteTest, ValidObjects) {
  EXPECT_TRUE(ValidateModelRewrite({"a", {Rule({"x"}, {T("y")})}}).ok());
  EXPECT_TRUE(ValidateModelRewrite({"a", {Rule({}, {T("y"), T("z")})}}).ok());
  EXPECT_TRUE(ValidateModelRewrite({"a", {Rule({"x", "w"}, {T("y", 1), T("z", 1'000'000)})}}).ok());
}

TEST(ValidateModelRewriteTest, ErrorsNameTheField) {
  struct Case {
    ModelRewrite rw;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"", {Rule({"x"}, {T("y")})}}, "name: is required"},
      {{"a", {}}, "spec.rules: at least one rule is required"},
      {{"a", {Rule({"x"}, {T("y")}), Rule({"x", ""}, {T("y")})}},
       "spec.rules[1].matches[1].model.value: must not be empty"},
      {{"a", {Rule({"x"}, {})}}, "spec.rules[0].targets: at least one is required"},
      {{"a", {Rule({"x"}, {T("y"), T("")})}}, "spec.rules[0].targets[1].modelRewrite: is required"},
      {{"a", {Rule({"x"}, {T("y", 1'000'001)})}},
       "spec.rules[0].targets[0].weight: 1000001 is not in 1..1000000"},
      {{"a", {Rule({"x"}, {T("y", 5), T("z")})}},
       "spec.rules[0].targets: weight is set on 1 of 2 targets; set it on every target or on "
       "none"},
  };
  for (const Case& c : cases) {
    absl::Status s = ValidateModelRewrite(c.rw);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.want;
    EXPECT_EQ(s.message(), c.want);
  }
}

TEST(ModelRewriteSetTest, EmptySetFindsNothing) {
  ModelRewriteSet set;
  EXPECT_FALSE(set.Find("llama"));
  EXPECT_TRUE(set.empty());
}

// Precedence: exact beats catch-all whatever the order; among exact (or among catch-all) the
// earliest object wins, and within an object the first rule.
TEST(ModelRewriteSetTest, Precedence) {
  std::vector<ModelRewrite> rws;
  rws.push_back({"first",
                 {Rule({}, {T("first-catch-all")}), Rule({"a"}, {T("first-a")}),
                  Rule({"a", "b"}, {T("first-ab")})}});
  rws.push_back({"second",
                 {Rule({"b"}, {T("second-b")}), Rule({"c"}, {T("second-c")}),
                  Rule({"c"}, {T("second-c-again")}), Rule({}, {T("second-all")})}});
  ModelRewriteSet set(std::move(rws));
  struct Case {
    std::string model, object, target;
    size_t rule;
  };
  for (const Case& c : std::vector<Case>{
           {"a", "first", "first-a", 1},    // exact beats the object's earlier catch-all
           {"b", "first", "first-ab", 2},   // the earlier object wins over second's first rule
           {"c", "second", "second-c", 1},  // within an object, the first rule
           {"zzz", "first", "first-catch-all", 0},  // catch-all: the earliest
           {"", "first", "first-catch-all", 0},
       }) {
    ModelRewriteMatch m = set.Find(c.model);
    ASSERT_TRUE(m) << c.model;
    EXPECT_EQ(m.rewrite->name, c.object) << c.model;
    EXPECT_EQ(m.rule_index, c.rule) << c.model;
    EXPECT_EQ(m.rule->targets[0].model, c.target) << c.model;
  }
}

TEST(ModelRewriteSetTest, WithoutCatchAllUnknownModelsHaveNoRule) {
  ModelRewriteSet set({{"o", {Rule({"a"}, {T("b")})}}});
  EXPECT_TRUE(set.Find("a"));
  EXPECT_FALSE(set.Find("b")) << "rules look up the incoming name, not the target";
  EXPECT_FALSE(set.Find("A")) << "Exact is case-sensitive";
}

TEST(ModelRewriteSetTest, LaterObjectsCatchAllBeatsNothingButLosesToAnyExact) {
  ModelRewriteSet set({{"o1", {Rule({"a"}, {T("x")})}}, {"o2", {Rule({}, {T("y")})}}});
  EXPECT_EQ(set.Find("a").rewrite->name, "o1");
  EXPECT_EQ(set.Find("q").rewrite->name, "o2");
}

TEST(PickModelRewriteTargetTest, WeightBoundaries) {
  ModelRewriteRule rule = Rule({"a"}, {T("x", 3), T("y", 1), T("z", 6)});
  const std::vector<std::pair<uint64_t, std::string>> cases = {
      {0, "x"}, {2, "x"}, {3, "y"}, {4, "z"}, {9, "z"}, {10, "x"}, {13, "y"}, {~0ull, "z"}};
  for (const auto& [random, want] : cases) {
    EXPECT_EQ(PickModelRewriteTarget(rule, random), want) << random;
  }
}

TEST(PickModelRewriteTargetTest, UnweightedIsUniform) {
  ModelRewriteRule rule = Rule({"a"}, {T("x"), T("y"), T("z")});
  EXPECT_EQ(PickModelRewriteTarget(rule, 0), "x");
  EXPECT_EQ(PickModelRewriteTarget(rule, 1), "y");
  EXPECT_EQ(PickModelRewriteTarget(rule, 5), "z");
}

// With a fixed seed, 100,000 picks land within 1% of weight/sum (about 8 standard deviations
// at these sizes).
TEST(PickModelRewriteTargetTest, WeightedSplitStatistics) {
  struct Case {
    std::vector<ModelRewriteTarget> targets;
    std::map<std::string, double> want;
  };
  const std::vector<Case> cases = {
      {{T("v1", 90), T("v2", 10)}, {{"v1", 0.9}, {"v2", 0.1}}},
      {{T("a", 1), T("b", 1'000'000)}, {{"a", 1e-6}, {"b", 1 - 1e-6}}},
      {{T("a"), T("b"), T("c"), T("d")}, {{"a", 0.25}, {"b", 0.25}, {"c", 0.25}, {"d", 0.25}}},
      {{T("a", 2), T("b", 3), T("c", 5)}, {{"a", 0.2}, {"b", 0.3}, {"c", 0.5}}},
  };
  std::mt19937_64 rng(12345);
  constexpr int kN = 100'000;
  for (const Case& c : cases) {
    ModelRewriteRule rule = Rule({"m"}, c.targets);
    std::map<std::string, int> got;
    for (int i = 0; i < kN; ++i) ++got[PickModelRewriteTarget(rule, rng())];
    for (const auto& [model, p] : c.want) {
      EXPECT_NEAR(static_cast<double>(got[model]) / kN, p, 0.01) << model;
    }
  }
}

TEST(ModelRewriteStoreTest, StartsEmptyAndPublishesReplacements) {
  ModelRewriteStore store;
  auto before = store.Get();
  ASSERT_NE(before, nullptr);
  EXPECT_TRUE(before->empty());
  ASSERT_TRUE(store.ReplaceModelRewrites({{"o", {Rule({"a"}, {T("b")})}}}).ok());
  auto after = store.Get();
  EXPECT_TRUE(after->Find("a"));
  EXPECT_FALSE(before->Find("a")) << "a reader's snapshot never changes";
  ASSERT_TRUE(store.ReplaceModelRewrites({}).ok());
  EXPECT_TRUE(store.Get()->empty());
  EXPECT_TRUE(after->Find("a"));
}

TEST(ModelRewriteStoreTest, InvalidReplacementKeepsThePreviousRules) {
  ModelRewriteStore store;
  ASSERT_TRUE(store.ReplaceModelRewrites({{"good", {Rule({"a"}, {T("b")})}}}).ok());
  auto kept = store.Get();

  absl::Status s = store.ReplaceModelRewrites(
      {{"ok", {Rule({"a"}, {T("c")})}}, {"bad", {Rule({"x"}, {T("y", 2), T("z")})}}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("model rewrite 1 (\"bad\"): spec.rules[0].targets"));
  EXPECT_EQ(store.Get(), kept);

  s = store.ReplaceModelRewrites({{"dup", {Rule({"a"}, {T("c")})}}, {"dup", {Rule({}, {T("d")})}}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("name \"dup\" is used twice"));
  EXPECT_EQ(store.Get(), kept);
}

TEST(ModelRewriteStoreTest, ConcurrentReadersSeeWholeSets) {
  ModelRewriteStore store;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      auto set = store.Get();
      ModelRewriteMatch m = set->Find("a");
      // Each published set maps "a" to the target its rewrite object is named after.
      if (m) {
        EXPECT_EQ(m.rule->targets[0].model, m.rewrite->name);
      }
    }
  });
  for (int i = 0; i < 500; ++i) {
    std::string n = std::to_string(i);
    ASSERT_TRUE(store.ReplaceModelRewrites({{n, {Rule({"a"}, {T(n)})}}}).ok());
  }
  stop = true;
  reader.join();
}

}  // namespace
}  // namespace epp::datastore
