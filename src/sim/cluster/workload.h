// Workloads for the cluster simulator (and the load generator's request bodies): seeded,
// reproducible request streams with Poisson or constant arrivals.
//
//   shared-prefix: a pool of groups × prompts_per_group prompts, each = the group's system
//     prompt + a question of its own (the shape of inference-perf's shared_prefix and of GIE's /
//     llm-d's prefix benchmarks); every request draws a pool entry uniformly.
//   multi-lora: prompts without shared prefixes for adapters drawn with a skew.
//   no-sharing: ShareGPT-like lengths (log-normal prompt and output lengths), nothing shared.
//
// Text is synthetic: 4-byte words, so a prompt of T tokens is 4T bytes for modelsim's and epp's
// 4-bytes-per-token estimates alike.
#ifndef EPP_SIM_CLUSTER_WORKLOAD_H_
#define EPP_SIM_CLUSTER_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

namespace epp::sim {

struct WorkRequest {
  double arrival_s = 0;  // since the start of the run
  std::string model;
  std::string prompt;
  int max_tokens = 0;
  int group = -1;  // shared-prefix group, for reports
};

struct Arrivals {
  double rate = 10;     // requests per second
  double seconds = 60;  // length of the run
  bool poisson = true;  // else constant spacing
  uint64_t seed = 1;
};

struct SharedPrefixSpec {
  int groups = 150;
  int prompts_per_group = 5;
  int system_tokens = 6000;
  int question_tokens = 1200;
  int output_tokens = 1000;
  std::string model = "llama";
};
std::vector<WorkRequest> SharedPrefixWorkload(const SharedPrefixSpec& spec, const Arrivals& a);

struct MultiLoraSpec {
  int adapters = 15;
  // Share of requests per tier of adapters: the first third of the adapters get 60%, the next
  // third 30%, the last third 10% (GIE's multi-LoRA regression skew).
  int prompt_tokens = 512;
  int output_tokens = 128;
  std::string adapter_prefix = "adapter-";
};
std::vector<WorkRequest> MultiLoraWorkload(const MultiLoraSpec& spec, const Arrivals& a);

struct NoSharingSpec {
  double prompt_tokens_median = 300;  // log-normal, sigma 1.0, clipped to [4, 4096]
  double output_tokens_median = 200;  // log-normal, sigma 0.8, clipped to [1, 2048]
  std::string model = "llama";
};
std::vector<WorkRequest> NoSharingWorkload(const NoSharingSpec& spec, const Arrivals& a);

// Synthetic text of `tokens` 4-byte words, determined by `seed`.
std::string SyntheticText(uint64_t seed, int tokens);

// The /v1/completions JSON body of a request (prompts are plain words: no escaping needed).
std::string CompletionBody(const WorkRequest& r, bool stream);

}  // namespace epp::sim

#endif  // EPP_SIM_CLUSTER_WORKLOAD_H_
