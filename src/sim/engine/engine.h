// Engine: a pure, clock-driven model of one vLLM V1 engine core (no I/O, no threads). The
// caller owns the clock: real time in modelsim's server, virtual time in benchmarks and tests.
//
// Lifecycle of a request: Submit() at its arrival; after the front-end overhead it enters the
// waiting queue; steps admit it FCFS (token budget, max_num_seqs, KV blocks, LoRA slots),
// prefill it in chunks, sample its first token in the step that completes the prompt, decode
// one token per step, and finish it at max_tokens, at its end-of-sequence, or at max_model_len.
//
// Driving it: call StartStep(now). If it returns an end time, the step runs until then; call
// FinishStep() at that time to get what the step produced, then StartStep again. If it returns
// nullopt the engine is idle: call StartStep again at NextWakeTime() or after the next Submit.
// A step's schedule is fixed when it starts, as in vLLM: requests arriving during a step wait
// for the next one.
//
// Step time = (base + per_prefill_token × prefill tokens scheduled + per_decode_seq × decoding
// sequences + per_decode_kctx × decoding context tokens / 1000) × (1 + lora_factor × distinct
// adapters in the batch) + lora_activate for adapters brought into a GPU slot.
#ifndef EPP_SIM_ENGINE_ENGINE_H_
#define EPP_SIM_ENGINE_ENGINE_H_

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "sim/engine/block_pool.h"
#include "sim/engine/tokenizer.h"

namespace epp::sim {

struct CostModel {
  // Defaults: own fit to vLLM v0.11, Llama-3.1-8B, one H100 (model-servers.md §4.6).
  absl::Duration step_base = absl::Microseconds(6800);
  absl::Duration per_prefill_token = absl::Nanoseconds(28000);
  absl::Duration per_decode_seq = absl::Microseconds(10);
  // KV-read cost of long contexts: per 1,000 context tokens of each decoding sequence. Off by
  // default because the fit above already absorbs it for short contexts (≈50 µs on an H100).
  absl::Duration per_decode_kctx = absl::ZeroDuration();
  // Tokenization and detokenization in the API server, added before a request reaches the
  // engine queue (so it is part of time to first token).
  absl::Duration frontend_overhead = absl::Milliseconds(15);
  // Step-time factor per distinct adapter in a batch (BLIS: 0.035 for rank 16).
  double lora_factor = 0.035;
  // Cold adapter load into the CPU cache, and activation of a CPU-cached adapter into a GPU
  // slot (added to the step that first uses it).
  absl::Duration lora_load = absl::Milliseconds(200);
  absl::Duration lora_activate = absl::Milliseconds(5);
};

struct EngineConfig {
  // vLLM's OpenAI-server defaults on an H100-class GPU.
  int max_num_seqs = 1024;
  int max_num_batched_tokens = 8192;
  int block_size = 16;
  int num_gpu_blocks = 26000;
  bool enable_prefix_caching = true;
  int max_model_len = 131072;
  bool enable_lora = false;
  int max_loras = 1;
  int max_cpu_loras = 0;  // 0: same as max_loras
  CostModel cost;
};

// Validates a configuration (positive sizes, max_model_len within the KV capacity, ...).
absl::Status ValidateEngineConfig(const EngineConfig& config);

enum class FinishReason { kNone, kStop, kLength, kAbort };
const char* FinishReasonName(FinishReason r);  // "stop", "length", "abort"

struct RequestSpec {
  uint64_t id = 0;  // unique among live requests
  std::vector<TokenId> prompt;
  int max_tokens = 16;
  // When not ignore_eos, the request ends with "stop" after this many tokens (if below
  // max_tokens); the caller picks it (modelsim derives it from the prompt, deterministically).
  bool ignore_eos = false;
  int eos_after = 0;
  std::string lora;  // adapter name; empty for the base model
  std::string cache_salt;
};

// What one step did for one request.
struct TokenEvent {
  uint64_t id = 0;
  int new_tokens = 0;        // 0 or 1
  bool first_token = false;  // this step produced the request's first token
  FinishReason finish = FinishReason::kNone;
  // Filled on every event (cheap) so consumers need no lookups.
  int prompt_tokens = 0;
  int output_tokens = 0;  // after this step
  int cached_tokens = 0;  // prompt tokens served from the prefix cache at admission
  int preemptions = 0;
  absl::Time arrival;  // Submit time
  absl::Time queued;   // entered the waiting queue (after the front-end overhead)
  absl::Time first_scheduled;
  absl::Time first_token_time;
};

struct StepResult {
  absl::Time start;
  absl::Time end;
  int scheduled_tokens = 0;  // vllm:iteration_tokens_total observation
  int prefill_tokens = 0;
  int decode_seqs = 0;
  std::vector<TokenEvent> events;  // requests that produced a token or finished
};

// Point-in-time gauges and cumulative counters, in vLLM's terms.
struct EngineStats {
  int running = 0;
  int waiting = 0;
  int waiting_for_capacity = 0;  // reason="capacity"; the rest are "deferred" (LoRA waits)
  double kv_usage = 0;
  uint64_t prefix_queries = 0;  // tokens looked up
  uint64_t prefix_hits = 0;     // tokens found
  uint64_t prompt_tokens = 0;   // of requests whose prefill completed (logical)
  uint64_t prompt_tokens_cached = 0;
  uint64_t generation_tokens = 0;
  uint64_t preemptions = 0;
  uint64_t evictions = 0;
  std::vector<std::string> running_loras;  // sorted, distinct
  std::vector<std::string> waiting_loras;
};

class Engine {
 public:
  explicit Engine(EngineConfig config);  // config must pass ValidateEngineConfig
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineConfig& config() const { return config_; }

  // Accepts a request arriving at `now`. InvalidArgument when the prompt plus max_tokens
  // exceed max_model_len, the prompt is empty, or the id is in use.
  absl::Status Submit(RequestSpec spec, absl::Time now);
  // Drops a request wherever it is; it finishes with kAbort in the next FinishStep (or at
  // once, reported by the return value, when no step holds it). Unknown ids are ignored.
  std::optional<TokenEvent> Abort(uint64_t id);

  // Starts a step at `now` if anything can run; returns its end time. Must not be called
  // while a step is in flight.
  std::optional<absl::Time> StartStep(absl::Time now);
  bool step_in_flight() const { return in_flight_; }
  // Completes the step in flight.
  StepResult FinishStep();
  // When idle: the earliest time something becomes runnable without a new Submit (a request
  // leaving the front-end, an adapter finishing its load); nullopt when nothing is pending.
  std::optional<absl::Time> NextWakeTime() const;

  // LoRA adapters: Load starts bringing an adapter into the CPU cache (ready after
  // cost.lora_load); Unload evicts it (requests still using it reload it on demand).
  void LoadLora(const std::string& name, absl::Time now);
  void UnloadLora(const std::string& name);

  EngineStats Stats() const;
  bool idle() const;  // nothing pending, waiting or running

  // Drops every cached prefix (vLLM's /reset_prefix_cache).
  void ResetPrefixCache() { pool_.ResetCache(); }

 private:
  struct Request;
  struct Scheduled {
    Request* req;
    int tokens;
  };

  bool AllocateSlots(Request& r, int num_new_tokens, std::span<const BlockId> hits);
  void ExtendHashes(Request& r);
  void CacheFullBlocks(Request& r, int num_tokens);
  void Preempt(Request& r);
  void FreeBlocks(Request& r);
  void Remove(Request* r);
  void MovePendingToWaiting(absl::Time now);
  bool LoraAdmissible(const Request& r, absl::Time now, std::vector<std::string>* batch_loras,
                      absl::Duration* activate_cost);
  bool CpuLoraReady(const std::string& name, absl::Time now);
  // Frees a CPU-cache entry if one may go; false when every entry is loading or needed.
  bool MakeCpuLoraRoom(absl::Time now);
  // Marks an adapter most recently used in the GPU slots (inserting it, dropping the LRU one).
  void TouchGpuSlot(const std::string& lora);
  TokenEvent MakeEvent(const Request& r) const;

  EngineConfig config_;
  BlockPool pool_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Request>> requests_;
  std::deque<Request*> pending_;  // in the front-end, by ready time (constant overhead: FIFO)
  std::deque<Request*> waiting_;
  std::vector<Request*> running_;
  std::vector<Scheduled> batch_;
  bool in_flight_ = false;
  absl::Time step_start_;
  absl::Time step_end_;
  std::vector<TokenEvent> aborted_;  // aborts to report with the next FinishStep

  // LoRA: CPU cache (LRU, front = most recent) with load completion times; GPU slots (LRU).
  struct CpuLora {
    std::string name;
    absl::Time ready;
  };
  std::list<CpuLora> cpu_loras_;
  std::list<std::string> gpu_slots_;

  uint64_t prefix_queries_ = 0;
  uint64_t prefix_hits_ = 0;
  uint64_t prompt_tokens_ = 0;
  uint64_t prompt_tokens_cached_ = 0;
  uint64_t generation_tokens_ = 0;
  uint64_t preemptions_ = 0;
};

}  // namespace epp::sim

#endif  // EPP_SIM_ENGINE_ENGINE_H_
