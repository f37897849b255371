// modelsim: a vLLM-compatible model-server simulator (see src/sim/server/server.h).
#include <signal.h>

#include <cstdio>

#include "app/modelsim_options.h"
#include "common/logging.h"
#include "common/strings.h"

namespace epp::app {
namespace {

int Run(int argc, char** argv) {
  auto options = ParseModelsimOptions(argc, argv);
  if (!options.ok()) {
    if (options.status().code() == absl::StatusCode::kCancelled) {
      std::fputs(std::string(options.status().message()).c_str(), stdout);
      return 0;
    }
    std::fprintf(stderr, "modelsim: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  SetLogVerbosity(options->verbosity);
  for (const auto& flag : options->ignored_flags) {
    EPP_LOG_WARN("modelsim: {} is accepted for vLLM compatibility and has no effect", flag);
  }
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const sim::ServerConfig& c = options->server;
  sim::ModelServer server(c);
  auto port = server.Start();
  if (!port.ok()) {
    EPP_LOG_ERROR("modelsim: {}", SV(port.status().message()));
    return 1;
  }
  EPP_LOG_INFO(
      "modelsim: serving {} on {}:{} (max_num_seqs {}, budget {} tokens, {} KV blocks of {}, "
      "prefix caching {}, LoRA {}, time scale {})",
      c.served_model_names.empty() ? c.model : c.served_model_names[0], c.host, *port,
      c.engine.max_num_seqs, c.engine.max_num_batched_tokens, c.engine.num_gpu_blocks,
      c.engine.block_size, c.engine.enable_prefix_caching ? "on" : "off",
      c.engine.enable_lora ? "on" : "off", c.time_scale);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  EPP_LOG_INFO("modelsim: signal {} received, shutting down", sig);
  server.Stop();
  return 0;
}

}  // namespace
}  // namespace epp::app

int main(int argc, char** argv) { return epp::app::Run(argc, argv); }
