// Faithful re-implementations of peer routers' policies for the cluster simulator (peers.md §3).
// sglang-cache-aware is described here; dynamo-kv, aibrix-prefix-cache and
// production-stack-prefixaware next to their factories below. Each router is single-threaded
// (the simulator calls it from one thread) and owns all its state.
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

// dynamo-kv: NVIDIA Dynamo's KV router (`--router-mode kv --no-kv-events`, peers.md §3.4).
//   Per request, for every worker w:
//     overlap_w  = leading prompt blocks the router predicts w holds (see below);
//     prefill_w  = (prefill tokens of w's requests still without a first token
//                   + prompt tokens − overlap_w × block_size) / block_size;
//     decode_w   = distinct KV blocks of w's active requests ∪ this request's blocks;
//     cost_w     = overlap_score_weight × prefill_w + decode_w   (the documented formula).
//   Temperature 0 (the default): the lowest cost; ties → the smaller predicted-cache footprint,
//   then random. The request's blocks become active on w at routing, its prefill tokens leave
//   w's prefill load at its first token, its blocks are freed at completion.
//   Prediction without KV events: the chosen worker is assumed to cache every full prompt block
//   for `ttl_s` (120 s) from the last time a request with that block was routed to it; when the
//   index exceeds max_tree_size blocks (2^20) it is pruned, oldest expiry first, to
//   prune_target_ratio (0.8) of that. Blocks: `block_size` tokens (the backend's; vLLM's and our
//   engines' 16), hashed with XXH3-64 seed 1337 over the token ids (little-endian u32), chained
//   as XXH3-64(parent sequence hash, block hash); only full blocks count.
// Approximations: token ids are the simulator's tokenizer's (4 bytes a token), exactly what the
//   engines cache; the request's partial last block counts as one unshared active block; active
//   blocks do not grow with output tokens (Dynamo may add them during generation); no
//   host/disk tiers, no `overlap_score_credit` decay, no busy thresholds or queueing (all off by
//   default); temperature > 0 is not modelled; one router replica.
struct DynamoKvParams {
  int block_size = 16;
  double overlap_score_weight = 1.0;
  double ttl_s = 120;
  int64_t max_tree_size = int64_t{1} << 20;
  double prune_target_ratio = 0.8;
  uint64_t seed = 1;  // random tie-breaks
};
std::unique_ptr<Router> MakeDynamoKvRouter(std::string name, int servers, DynamoKvParams params);

// aibrix-prefix-cache: AIBrix's `prefix-cache` routing algorithm (peers.md §3.5; the classic
// form with the absolute imbalance check, `prefix_cache.go` + `prefixcacheindexer/hash.go`).
//   Tokens: the character tokenizer (the prompt's bytes). Blocks of block_size (4) tokens,
//   full blocks only, hashed as XXH64(seed; parent hash as 8 little-endian bytes ‖ block),
//   the first parent being the seed. A table of at most block_number (200,000) block hashes,
//   each with the set of pods it was routed to, least recently *written* evicted first;
//   entries not written for eviction_duration_s (20 min) are dropped (checked every second).
//   Per request, over the router's own in-flight counts per pod:
//     1. max − min > imbalance_abs_count (8) → a random least-loaded pod;
//     2. else match: walk the blocks in order, a pod's match % = (blocks it holds in an
//        unbroken run from the first) × 100 / blocks (integer); stop when no pod holds the next
//        block. Matched pods, shuffled, then stably sorted by match % desc, in-flight asc;
//        the first with in-flight ≤ mean + standard_deviation_factor (1) × σ (population σ
//        over all pods) wins; none matched or none under the bar → a random least-loaded pod;
//     3. the request's block hashes are (re)written for the chosen pod.
// Approximations: the hash seed is fixed per run (AIBrix draws one at start-up); "in-flight" is
//   routed-not-completed, which is what AIBrix's gateway counter tracks. Newer AIBrix (2026)
//   replaces step 1 with a gate (max > 2 × (mean + 1) and max − min ≥ 8 → match only among the
//   least-loaded pods); not modelled. The docs' defaults (16, 2σ) differ from the code's, which
//   are used here.
struct AibrixPrefixCacheParams {
  int block_size = 4;
  int64_t block_number = 200'000;
  double eviction_duration_s = 20 * 60;
  int64_t imbalance_abs_count = 8;
  double standard_deviation_factor = 1;
  uint64_t seed = 1;  // hash seed and random choices
};
std::unique_ptr<Router> MakeAibrixPrefixCacheRouter(std::string name, int servers,
                                                    AibrixPrefixCacheParams params);

// production-stack-prefixaware: vLLM production-stack's `prefixaware` router (peers.md §3.6,
// `routing_logic.py` PrefixAwareRouter + `prefix/hashtrie.py`).
//   The prompt is split into chunk_size (128) character chunks (the last may be shorter), each
//   hashed with XXH64 seed 0 (Python's xxhash.xxh64(...).intdigest()); a trie of chunk hashes
//   records at each node the endpoints that were sent a prompt through it. Per request: walk
//   the trie from the root, narrowing the candidate set to the node's endpoints while the
//   intersection is non-empty; pick one of the remaining candidates uniformly at random (all
//   endpoints when nothing matched); insert the prompt under the chosen endpoint. No eviction,
//   no load signal.
// Approximations: the random choice uses a seeded generator over endpoints in index order
//   (Python picks from a hash-ordered set); the request text is the completion prompt (chat
//   messages would be joined with "\n" first). Newer releases' prefix_min_match_length
//   (default 0, so its lowest-QPS fallback never fires by default) is not modelled.
struct PrefixAwareParams {
  int chunk_size = 128;
  uint64_t seed = 1;
};
std::unique_ptr<Router> MakeProductionStackPrefixAwareRouter(std::string name, int servers,
                                                             PrefixAwareParams params);

}  // namespace epp::sim

#endif  // EPP_SIM_CLUSTER_PEER_ROUTERS_H_
