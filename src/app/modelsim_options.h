// Command-line flags of `modelsim`. Engine flags are named as vLLM names them (`--port`,
// `--model`, `--served-model-name`, `--max-num-seqs`, `--max-num-batched-tokens`,
// `--block-size`, `--num-gpu-blocks-override`, `--[no-]enable-prefix-caching`, `--enable-lora`,
// `--max-loras`, `--max-cpu-loras`, `--lora-modules name=path ...`, `--max-model-len`); the
// cost model, time scale, metric dialect and fault injection have simulator flags
// (`--sim-*`, `--time-scale`, `--engine`, `--fault-*`).
#ifndef EPP_APP_MODELSIM_OPTIONS_H_
#define EPP_APP_MODELSIM_OPTIONS_H_

#include "absl/status/statusor.h"
#include "sim/server/server.h"

namespace epp::app {

struct ModelsimOptions {
  sim::ServerConfig server;
  int verbosity = 2;
  // vLLM flags accepted for drop-in command lines that do not change the simulation
  // (e.g. --dtype); main logs each once.
  std::vector<std::string> ignored_flags;
};

// Parses argv; InvalidArgument naming the flag on errors (usage included); `--help` gives a
// Cancelled status whose message is the usage text. The result passes ValidateServerConfig.
absl::StatusOr<ModelsimOptions> ParseModelsimOptions(int argc, const char* const* argv);

}  // namespace epp::app

#endif  // EPP_APP_MODELSIM_OPTIONS_H_
