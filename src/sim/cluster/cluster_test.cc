// Routing quality as deterministic assertions: the cluster simulator runs the real scheduler on
// simulated vLLM servers in virtual time, so a regression in a scorer shows up as a number.
#include "sim/cluster/cluster.h"

#include <gtest/gtest.h>

#include "sim/cluster/peer_routers.h"

namespace epp::sim {

using loadgen::Arrivals;
using loadgen::SharedPrefixSpec;
using loadgen::SharedPrefixWorkload;
using loadgen::WorkRequest;

namespace {

ClusterConfig SmallCluster() {
  ClusterConfig c;
  c.servers = 4;
  c.engine.max_num_seqs = 64;
  c.engine.num_gpu_blocks = 4000;
  c.engine.max_model_len = 8192;
  return c;
}

std::vector<WorkRequest> PrefixWork(double rate) {
  SharedPrefixSpec s;
  // 64 groups × 1,500 tokens = 96K tokens of prefixes: more than one server's cache (64K tokens),
  // a quarter of it fits — routing by prefix matters.
  s.groups = 64;
  s.prompts_per_group = 8;
  s.system_tokens = 1500;
  s.question_tokens = 100;
  s.output_tokens = 50;
  Arrivals a;
  a.rate = rate;
  a.seconds = 30;
  return SharedPrefixWorkload(s, a);
}

ClusterResult RunWith(const std::string& router_name, const std::vector<WorkRequest>& work,
                      ClusterConfig c = SmallCluster()) {
  std::unique_ptr<Router> r;
  if (router_name == "round-robin") {
    r = MakeRoundRobinRouter(c.servers);
  } else if (router_name == "sglang-cache-aware") {
    r = MakeCacheAwareRouter(router_name, c.servers, CacheAwareParams::CliDefaults());
  } else {
    auto made = MakeEppRouter(router_name, c.servers, EppProfileConfig(router_name));
    EXPECT_TRUE(made.ok()) << made.status();
    r = *std::move(made);
  }
  return RunCluster(c, work, *r);
}

TEST(WorkloadTest, SharedPrefixIsReproducibleAndShared) {
  auto a = PrefixWork(10), b = PrefixWork(10);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 200u);
  EXPECT_EQ(a[7].prompt, b[7].prompt);
  EXPECT_EQ(a[7].arrival_s, b[7].arrival_s);
  // Two requests of one group share the system prompt (6,000 bytes) and differ after it.
  for (size_t i = 1; i < a.size(); ++i) {
    if (a[i].group == a[0].group && a[i].prompt != a[0].prompt) {
      EXPECT_EQ(a[i].prompt.substr(0, 6000), a[0].prompt.substr(0, 6000));
      break;
    }
  }
}

TEST(ClusterTest, EveryRequestCompletes) {
  auto work = PrefixWork(10);
  ClusterResult r = RunWith("round-robin", work);
  EXPECT_EQ(r.completed, r.requests);
  EXPECT_GT(r.output_tokens_per_s, 0);
  EXPECT_GT(r.ttft_p50_s, 0.015);  // at least the front-end overhead
}

TEST(ClusterTest, DefaultProfileRaisesThePrefixHitRateOverRoundRobin) {
  auto work = PrefixWork(20);
  ClusterResult rr = RunWith("round-robin", work);
  ClusterResult def = RunWith("epp-default", work);
  EXPECT_EQ(def.completed, def.requests);
  EXPECT_GT(def.prefix_hit_rate, rr.prefix_hit_rate + 0.15)
      << "default " << def.prefix_hit_rate << " vs round-robin " << rr.prefix_hit_rate;
  EXPECT_LT(def.ttft_mean_s, rr.ttft_mean_s);
}

TEST(ClusterTest, DeterministicForAWorkload) {
  auto work = PrefixWork(15);
  ClusterResult a = RunWith("epp-default", work);  // random tie-breaks included
  ClusterResult b = RunWith("epp-default", work);
  EXPECT_EQ(a.ttft_p90_s, b.ttft_p90_s);
  EXPECT_EQ(a.per_server, b.per_server);
}

TEST(PeerRoutersTest, CacheAwareFollowsPrefixesWhileBalanced) {
  auto work = PrefixWork(20);
  ClusterResult rr = RunWith("round-robin", work);
  ClusterResult ca = RunWith("sglang-cache-aware", work);
  EXPECT_EQ(ca.completed, ca.requests);
  EXPECT_GT(ca.prefix_hit_rate, rr.prefix_hit_rate + 0.15)
      << "cache-aware " << ca.prefix_hit_rate << " vs round-robin " << rr.prefix_hit_rate;
}

TEST(PeerRoutersTest, CacheAwareFallsBackToLeastLoadedWhenImbalanced) {
  // abs threshold 0: any load difference counts as imbalance (with rel 1.0), so every request
  // goes to the least-loaded server and the spread is even.
  CacheAwareParams p;
  p.balance_abs_threshold = 0;
  p.balance_rel_threshold = 1.0;
  auto r = MakeCacheAwareRouter("ca", 4, p);
  WorkRequest w;
  w.prompt = std::string(100, 'x');
  std::vector<int> count(4);
  for (uint64_t i = 0; i < 8; ++i) ++count[static_cast<size_t>(r->Route(i, w, ""))];
  // The first goes by match (none yet: least loaded); from then on the loads differ.
  EXPECT_EQ(count, (std::vector<int>{2, 2, 2, 2}));
}

}  // namespace
}  // namespace epp::sim
