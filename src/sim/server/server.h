// ModelServer: modelsim's HTTP face. One Asio event loop (its own thread) runs the HTTP/1.1
// sessions and drives one Engine in real time (scaled by time_scale): a step's schedule is
// fixed when it starts, the loop sleeps until the step's simulated end, delivers the tokens
// (SSE chunks or whole responses) and starts the next step. Nothing runs while the engine is
// idle, so an idle server costs only its /metrics scrapes.
//
// Endpoints (vLLM's): POST /v1/completions, /v1/chat/completions, /tokenize,
// /v1/load_lora_adapter, /v1/unload_lora_adapter; GET /v1/models, /health, /ping, /version,
// /metrics (also at /prometheus/metrics). Simulator-only: GET/POST /sim/faults.
#ifndef EPP_SIM_SERVER_SERVER_H_
#define EPP_SIM_SERVER_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sim/engine/engine.h"
#include "sim/server/faults.h"
#include "sim/server/sim_metrics.h"

namespace epp::sim {

struct ServerConfig {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;
  std::string model = "meta-llama/Llama-3.1-8B-Instruct";
  std::vector<std::string> served_model_names;                    // empty: {model}
  std::vector<std::pair<std::string, std::string>> lora_modules;  // name, path
  EngineConfig engine;
  double time_scale = 1.0;  // simulated seconds per real second
  MetricsDialect dialect = MetricsDialect::kVllm;
  Faults faults;
  uint64_t seed = 0;
  double gpu_memory_utilization = 0.9;  // only reported (vllm:cache_config_info)
  // Mean length of answers that end at their end-of-sequence (requests without ignore_eos).
  int output_len_mean = 128;
  size_t max_request_body_bytes = 64u << 20;
};

// Checks the configuration; errors name the flag.
absl::Status ValidateServerConfig(const ServerConfig& config);

class ModelServer {
 public:
  explicit ModelServer(ServerConfig config);  // config must pass ValidateServerConfig
  ~ModelServer();

  // Binds and starts the loop thread; returns the bound port.
  absl::StatusOr<uint16_t> Start();
  // Stops serving; open connections are closed. Idempotent.
  void Stop();

  struct Impl;  // opaque; public only so the .cc's connection class can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace epp::sim

#endif  // EPP_SIM_SERVER_SERVER_H_
