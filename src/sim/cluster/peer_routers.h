// Faithful re-implementations of peer routers' policies for the cluster simulator (peers.md §3).
//
//   sglang-cache-aware: SGLang router / SMG / vLLM Router `cache_aware`. Per request:
//     1. imbalanced ⇔ (max load − min load) > balance_abs_threshold and
//        max load > balance_rel_threshold × min load, over the router's own in-flight counts;
//        then the least-loaded worker (ties: fewer requests routed so far, then index);
//     2. else match the prompt's characters against what each worker was sent; match rate =
//        longest match / prompt length; above cache_threshold → the worker with the longest
//        match (ties: least loaded), else the least-loaded worker;
//     3. the prompt is recorded for the chosen worker; every eviction_interval, each worker's
//        record is trimmed, least recently used first, to max_tree_size characters.
//   Two default sets: the Python/CLI one (`sglang_router`, `vllm-router` launchers: threshold
//   0.3, abs 64, rel 1.5, eviction 120 s, max tree 2^26) and the Rust library's
//   (`CacheAwareConfig::default()`, SMG and vLLM Router as libraries: 0.5, 32, 1.1, 30 s,
//   10,000).
//
// Approximation: SGLang keeps a character radix tree shared by all workers, where a worker's
// size counts the characters of its nodes; here each worker keeps the distinct prompts it was
// sent (longest match = the longest common prefix with its sorted neighbours), and its size is
// the sum of their lengths, which over-counts shared prefixes — trimming starts earlier than
// SGLang's for workers holding many prompts with one prefix. Matching is exact.
#ifndef EPP_SIM_CLUSTER_PEER_ROUTERS_H_
#define EPP_SIM_CLUSTER_PEER_ROUTERS_H_

#include <memory>
#include <string>

#include "sim/cluster/routers.h"

namespace epp::sim {

struct CacheAwareParams {
  double cache_threshold = 0.3;
  int64_t balance_abs_threshold = 64;
  double balance_rel_threshold = 1.5;
  double eviction_interval_s = 120;
  int64_t max_tree_size = int64_t{1} << 26;

  static CacheAwareParams CliDefaults() { return {}; }
  static CacheAwareParams RustDefaults() { return {0.5, 32, 1.1, 30, 10'000}; }
};

std::unique_ptr<Router> MakeCacheAwareRouter(std::string name, int servers,
                                             CacheAwareParams params);

}  // namespace epp::sim

#endif  // EPP_SIM_CLUSTER_PEER_ROUTERS_H_
