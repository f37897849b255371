// Workloads for the load generator and the cluster simulator: seeded, reproducible request
// streams, and Poisson or constant arrival times.
//
//   shared-prefix: a pool of groups × prompts_per_group prompts, each = the group's system
//     prompt + a question of its own (the shape of inference-perf's shared_prefix and of GIE's /
//     llm-d's prefix benchmarks); every request draws a pool entry uniformly.
//   multi-lora: prompts without shared prefixes for adapters drawn with a skew (tiers of
//     adapters with weights, 60/30/10 by default).
//   no-sharing ("sharegpt" in loadgen): ShareGPT-like lengths (log-normal prompt and output
//     lengths), nothing shared.
//   long-prompt: every request a prompt of its own, 220 KB by default (GIE issue #2928's test).
//
// Text is synthetic: 4-byte words, so a prompt of T tokens is 4T bytes for modelsim's and epp's
// 4-bytes-per-token estimates alike, and needs no JSON escaping.
//
// Reproducibility: a request stream is a pure function of its spec, its seed and the state of
// the generator it starts from. The batch functions (clustersim) and loadgen's open loop draw
// the arrival times first and then the requests from the same generator, so loadgen with
// `--rate R --duration D --seed S` sends the requests clustersim simulates for `--rate R
// --seconds D --seed S`.
//
// Thread-safety: generators are not thread-safe; the free functions are.
#ifndef EPP_LOADGEN_WORKLOAD_H_
#define EPP_LOADGEN_WORKLOAD_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <variant>
#include <vector>

namespace epp::loadgen {

struct WorkRequest {
  double arrival_s = 0;  // since the start of the run (0 from a generator)
  std::string model;
  std::string prompt;
  int max_tokens = 0;
  int group = -1;  // shared-prefix group, for reports
};

struct Arrivals {
  double rate = 10;     // requests per second
  double seconds = 60;  // arrivals before this time (may be infinity with max_requests)
  bool poisson = true;  // else constant spacing
  uint64_t seed = 1;
  int64_t max_requests = 0;  // also stop after this many arrivals; 0: no limit
};

// Arrival times in seconds since the start, ascending: exponential gaps of mean 1/rate drawn
// from `rng` (Poisson), or i/rate (constant; `rng` is not used). Ends before `seconds` and
// after `max_requests` (when > 0). Requires rate > 0 and a finite end.
std::vector<double> ArrivalTimes(const Arrivals& a, std::mt19937_64& rng);

struct SharedPrefixSpec {
  int groups = 150;
  int prompts_per_group = 5;
  int system_tokens = 6000;
  int question_tokens = 1200;
  int output_tokens = 1000;
  std::string model = "llama";
};

struct MultiLoraSpec {
  int adapters = 15;
  // Request shares of tiers of adapters: with n weights, each of the first n−1 tiers has
  // max(1, adapters / n) adapters and the last tier the rest; a request draws a tier by
  // weight, then an adapter of the tier uniformly (60/30/10: GIE's multi-LoRA regression skew).
  std::vector<double> tier_weights = {60, 30, 10};
  int prompt_tokens = 512;
  int output_tokens = 128;
  std::string adapter_prefix = "adapter-";  // adapter k is named adapter_prefix + k
};

struct NoSharingSpec {
  double prompt_tokens_median = 300;  // log-normal
  double prompt_tokens_sigma = 1.0;
  int min_prompt_tokens = 4;
  int max_prompt_tokens = 4096;
  double output_tokens_median = 200;  // log-normal
  double output_tokens_sigma = 0.8;
  int min_output_tokens = 1;
  int max_output_tokens = 2048;
  std::string model = "llama";
};

struct LongPromptSpec {
  int prompt_tokens = 55'000;  // 220,000 bytes
  int output_tokens = 100;
  std::string model = "llama";
};

using WorkloadSpec = std::variant<SharedPrefixSpec, MultiLoraSpec, NoSharingSpec, LongPromptSpec>;

// An endless, reproducible stream of requests (arrival_s is 0).
class RequestGenerator {
 public:
  virtual ~RequestGenerator() = default;
  virtual WorkRequest Next() = 0;
};

// A generator for `spec` whose text is derived from `seed` and whose draws continue from `rng`.
// The spec must have positive sizes and counts (loadgen validates its flags).
std::unique_ptr<RequestGenerator> MakeGenerator(const WorkloadSpec& spec, uint64_t seed,
                                                std::mt19937_64 rng);

// An open-loop run: the arrival times, then the requests drawn after them from the same
// generator state (the order clustersim has always drawn them in).
struct OpenLoopPlan {
  std::vector<double> arrivals;
  std::unique_ptr<RequestGenerator> requests;
};
OpenLoopPlan PlanOpenLoop(const WorkloadSpec& spec, const Arrivals& a);

// Whole runs at once (clustersim): PlanOpenLoop with every request drawn.
std::vector<WorkRequest> Workload(const WorkloadSpec& spec, const Arrivals& a);
std::vector<WorkRequest> SharedPrefixWorkload(const SharedPrefixSpec& spec, const Arrivals& a);
std::vector<WorkRequest> MultiLoraWorkload(const MultiLoraSpec& spec, const Arrivals& a);
std::vector<WorkRequest> NoSharingWorkload(const NoSharingSpec& spec, const Arrivals& a);

// Synthetic text of `tokens` 4-byte words, determined by `seed`.
std::string SyntheticText(uint64_t seed, int tokens);

// The /v1/completions JSON body of a request (the model JSON-escaped; prompts are plain words).
// With `stream`: also "stream":true and "stream_options":{"include_usage":true}.
std::string CompletionBody(const WorkRequest& r, bool stream);

// The /v1/chat/completions JSON body: the prompt as one user message, max_tokens, ignore_eos,
// and with `stream` as CompletionBody.
std::string ChatBody(const WorkRequest& r, bool stream);

}  // namespace epp::loadgen

#endif  // EPP_LOADGEN_WORKLOAD_H_
