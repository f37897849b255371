#include "k8s/pool_reconciler.h"

#include <gtest/gtest.h>

namespace epp::k8s {
namespace {

Pod MakePod(std::string name, std::string ip, std::map<std::string, std::string> labels,
            bool ready = true) {
  Pod p;
  p.meta.name = std::move(name);
  p.meta.ns = "ns";
  p.meta.labels = std::move(labels);
  p.pod_ip = std::move(ip);
  p.ready_condition = ready;
  return p;
}

InferencePool MakePool(std::vector<int> ports = {8000}) {
  InferencePool pool;
  pool.meta.name = "pool";
  pool.meta.ns = "ns";
  pool.match_labels = {{"app", "vllm"}};
  pool.target_ports = std::move(ports);
  return pool;
}

std::vector<std::string> Keys(const datastore::Datastore& ds) {
  std::vector<std::string> out;
  for (const auto& e : ds.GetSnapshot()->endpoints) out.push_back(e->Key() + "@" + e->host_port);
  return out;
}

TEST(ComputeEndpointsTest, OneEndpointPerReadyMatchingPodAndActivePort) {
  std::map<std::string, Pod> pods;
  pods["a"] = MakePod("a", "10.0.0.1", {{"app", "vllm"}, {"x", "1"}});
  pods["b"] = MakePod("b", "10.0.0.2", {{"app", "other"}});
  pods["c"] = MakePod("c", "10.0.0.3", {{"app", "vllm"}}, /*ready=*/false);
  pods["d"] = MakePod("d", "", {{"app", "vllm"}});  // no IP yet
  pods["e"] = MakePod("e", "10.0.0.5", {{"app", "vllm"}});
  pods["e"].meta.annotations[std::string(kActivePortsAnnotation)] = "8001";
  pods["f"] = MakePod("f", "10.0.0.6", {{"app", "vllm"}});
  pods["f"].meta.deleting = true;
  auto eps = ComputeEndpoints(MakePool({8000, 8001}), pods);
  std::vector<std::string> got;
  for (const auto& e : eps) got.push_back(e.Key() + "@" + e.host_port);
  EXPECT_EQ(got, (std::vector<std::string>{"ns/a-rank-0@10.0.0.1:8000", "ns/a-rank-1@10.0.0.1:8001",
                                           "ns/e-rank-1@10.0.0.5:8001"}));
  EXPECT_EQ(eps[0].labels.at("x"), "1");
}

TEST(PoolReconcilerTest, FollowsPoolAndPods) {
  datastore::Datastore ds;
  PoolReconciler r("pool", ds);
  // Pods listed before the pool: nothing written until the pool list arrives.
  r.ReplacePods({MakePod("a", "10.0.0.1", {{"app", "vllm"}})});
  EXPECT_FALSE(ds.GetSnapshot()->pool_ready);
  r.ReplacePools({MakePool()});
  EXPECT_TRUE(ds.GetSnapshot()->pool_ready);
  EXPECT_EQ(Keys(ds), (std::vector<std::string>{"ns/a-rank-0@10.0.0.1:8000"}));

  // A pod becoming ready, another changing labels away, a deletion.
  r.UpsertPod(MakePod("b", "10.0.0.2", {{"app", "vllm"}}));
  EXPECT_EQ(Keys(ds).size(), 2u);
  r.UpsertPod(MakePod("a", "10.0.0.1", {{"app", "moved"}}));
  EXPECT_EQ(Keys(ds), (std::vector<std::string>{"ns/b-rank-0@10.0.0.2:8000"}));
  ObjectMeta gone;
  gone.name = "b";
  r.RemovePod(gone);
  EXPECT_TRUE(Keys(ds).empty());
  EXPECT_TRUE(ds.GetSnapshot()->pool_ready);

  // The pool's selector and ports change: endpoints follow.
  r.UpsertPod(MakePod("a", "10.0.0.1", {{"app", "moved"}}));
  InferencePool moved = MakePool({9000});
  moved.match_labels = {{"app", "moved"}};
  r.UpsertPool(moved);
  EXPECT_EQ(Keys(ds), (std::vector<std::string>{"ns/a-rank-0@10.0.0.1:9000"}));

  // Another pool's events are ignored.
  InferencePool other = MakePool();
  other.meta.name = "other";
  r.UpsertPool(other);
  EXPECT_EQ(Keys(ds).size(), 1u);

  // The pool is deleted: empty and not ready; it comes back: ready with endpoints again.
  ObjectMeta pool_meta;
  pool_meta.name = "pool";
  r.RemovePool(pool_meta);
  EXPECT_FALSE(ds.GetSnapshot()->pool_ready);
  EXPECT_TRUE(Keys(ds).empty());
  r.UpsertPool(moved);
  EXPECT_TRUE(ds.GetSnapshot()->pool_ready);
  EXPECT_EQ(Keys(ds).size(), 1u);

  // A re-list without the pool counts as a deletion.
  r.ReplacePools({});
  EXPECT_FALSE(ds.GetSnapshot()->pool_ready);
}

TEST(PoolReconcilerTest, UnchangedEventsDoNotRepublish) {
  datastore::Datastore ds;
  PoolReconciler r("pool", ds);
  r.ReplacePools({MakePool()});
  r.ReplacePods({MakePod("a", "10.0.0.1", {{"app", "vllm"}})});
  uint64_t version = ds.GetSnapshot()->version;
  Pod same = MakePod("a", "10.0.0.1", {{"app", "vllm"}});
  same.meta.resource_version = "999";  // a status heartbeat: nothing epp uses changed
  r.UpsertPod(same);
  r.UpsertPod(MakePod("z", "10.0.0.9", {{"app", "nope"}}));
  EXPECT_EQ(ds.GetSnapshot()->version, version);
}

}  // namespace
}  // namespace epp::k8s
