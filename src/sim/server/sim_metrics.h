// SimMetrics: the simulator's /metrics page, in the exact names, types, labels, bucket bounds
// and text format of the server being imitated (vLLM V1 by default; SGLang or trtllm-serve on
// request). It records per-request observations from the engine's step results (time to first
// token, inter-token latency, end-to-end, queue, prefill, decode, inference times, token counts)
// and renders them together with the engine's gauges and counters.
//
// Times are the engine's (simulated) durations, so a run with --time-scale N reports the same
// latencies as a real-time run.
//
// Not thread-safe: one owner (the server's event loop).
#ifndef EPP_SIM_SERVER_SIM_METRICS_H_
#define EPP_SIM_SERVER_SIM_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "sim/engine/engine.h"

namespace epp::sim {

enum class MetricsDialect { kVllm, kSglang, kTrtllmServe };

// Parses "vllm", "sglang", "trtllm-serve"; nullopt-like false on anything else.
bool ParseMetricsDialect(std::string_view s, MetricsDialect* out);

struct MetricsInfo {
  std::string model_name;  // label model_name: the first served model name
  int block_size = 16;
  int num_gpu_blocks = 0;
  bool enable_prefix_caching = true;
  bool enable_lora = false;
  int max_loras = 1;
  int max_model_len = 0;
  double gpu_memory_utilization = 0.9;
  double created_unix = 0;  // process start: value of the *_created series
};

// Prometheus-client float formatting (Python repr switched to Go's exponent style for large
// values): 3.0, 0.0412, 1.755178079975038e+09, +Inf, -Inf, NaN.
std::string FormatPromFloat(double v);

class SimMetrics {
 public:
  SimMetrics(MetricsInfo info, MetricsDialect dialect);
  ~SimMetrics();

  // A request was accepted by the API server (request_params_* histograms).
  void OnRequest(int max_tokens, int n);
  // A step finished: records iteration tokens, per-token and per-request observations from its
  // events, and, with LoRA, a lora_requests_info sample stamped `now_unix` from `after`.
  void OnStep(const StepResult& step, const EngineStats& after, double now_unix);
  // A request that failed before reaching the engine or was aborted outside a step.
  void OnFinishedOutsideStep(const TokenEvent& event);

  // The whole page for the current engine state.
  std::string Render(const EngineStats& stats) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace epp::sim

#endif  // EPP_SIM_SERVER_SIM_METRICS_H_
