// Tests of the InferenceObjective and InferenceModelRewrite reconcilers.
#include <gtest/gtest.h>

#include "k8s/model_rewrite_reconciler.h"
#include "k8s/objective_reconciler.h"

namespace epp::k8s {
namespace {

InferenceObjective Objective(std::string name, std::optional<int64_t> priority,
                             std::string pool = "pool") {
  InferenceObjective o;
  o.meta.name = std::move(name);
  o.priority = priority;
  o.pool_ref.name = std::move(pool);
  return o;
}

TEST(ObjectiveReconcilerTest, KeepsThisPoolsPriorities) {
  datastore::ObjectiveStore store;
  ObjectiveReconciler r("pool", "inference.networking.k8s.io", store);
  InferenceObjective other_group = Objective("g", -5);
  other_group.pool_ref.group = "example.com";
  r.Replace({Objective("batch", -1), Objective("chat", 10), Objective("unset", std::nullopt),
             Objective("foreign", -3, "other-pool"), other_group});
  EXPECT_EQ(store.Priority("batch"), -1);
  EXPECT_EQ(store.Priority("chat"), 10);
  EXPECT_EQ(store.Priority("unset"), 0);
  EXPECT_EQ(store.Priority("foreign"), 0);
  EXPECT_EQ(store.Priority("g"), 0);
  EXPECT_EQ(store.Priority(""), 0);
  EXPECT_EQ(store.Get()->size(), 3u);

  r.Upsert(Objective("batch", 2));
  EXPECT_EQ(store.Priority("batch"), 2);
  // Re-pointed at another pool: it stops applying.
  r.Upsert(Objective("chat", 10, "other-pool"));
  EXPECT_EQ(store.Priority("chat"), 0);
  ObjectMeta m;
  m.name = "batch";
  r.Remove(m);
  EXPECT_EQ(store.Get()->size(), 1u);
}

InferenceModelRewrite Rewrite(std::string name, std::string created, std::string match,
                              std::string target, std::string pool = "pool") {
  InferenceModelRewrite r;
  r.meta.name = name;
  r.meta.creation_timestamp = std::move(created);
  r.pool_ref.name = std::move(pool);
  r.rewrite.name = std::move(name);
  datastore::ModelRewriteRule rule;
  if (!match.empty()) rule.matches = {match};
  rule.targets = {{std::move(target), 0}};
  r.rewrite.rules = {rule};
  return r;
}

TEST(ModelRewriteReconcilerTest, OldestWinsInvalidSkippedOtherPoolsIgnored) {
  datastore::ModelRewriteStore store;
  ModelRewriteReconciler r("pool", "inference.networking.k8s.io", store);
  InferenceModelRewrite invalid = Rewrite("bad", "2026-01-01T00:00:00Z", "m", "x");
  invalid.rewrite.rules[0].targets.clear();  // no targets: invalid
  r.Replace({Rewrite("newer", "2026-03-01T00:00:00Z", "llama", "from-newer"),
             Rewrite("older", "2026-02-01T00:00:00Z", "llama", "from-older"), invalid,
             Rewrite("foreign", "2025-01-01T00:00:00Z", "llama", "foreign", "other")});
  auto set = store.Get();
  ASSERT_EQ(set->rewrites().size(), 2u);
  auto match = set->Find("llama");
  ASSERT_TRUE(match);
  EXPECT_EQ(match.rewrite->name, "older");

  ObjectMeta m;
  m.name = "older";
  r.Remove(m);
  EXPECT_EQ(store.Get()->Find("llama").rewrite->name, "newer");
  r.Upsert(Rewrite("newer", "2026-03-01T00:00:00Z", "llama", "x", "other"));
  EXPECT_FALSE(store.Get()->Find("llama"));
}

}  // namespace
}  // namespace epp::k8s
