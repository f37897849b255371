#include "app/modelsim_options.h"

#include "CLI/CLI.hpp"
#include "common/strings.h"

namespace epp::app {

absl::StatusOr<ModelsimOptions> ParseModelsimOptions(int argc, const char* const* argv) {
  ModelsimOptions o;
  sim::ServerConfig& s = o.server;
  sim::EngineConfig& e = s.engine;
  sim::CostModel& c = e.cost;
  CLI::App app{"modelsim: a vLLM-compatible model-server simulator"};
  app.set_help_flag("-h,--help", "Print this help");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  // vLLM's names.
  app.add_option("--host", s.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", s.port, "Port to listen on")->capture_default_str();
  app.add_option("--model", s.model, "Model name or path (reported, not loaded)")
      ->capture_default_str();
  app.add_option("--served-model-name", s.served_model_names,
                 "Names the API accepts for the base model (default: --model); the first is "
                 "the metrics' model_name")
      ->expected(1, -1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--max-num-seqs", e.max_num_seqs, "Most requests in a batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-num-batched-tokens", e.max_num_batched_tokens, "Token budget per step")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--block-size", e.block_size, "Tokens per KV block")
      ->capture_default_str()
      ->check(CLI::IsMember({1, 8, 16, 32, 64, 128}));
  app.add_option("--num-gpu-blocks-override", e.num_gpu_blocks,
                 "KV blocks (vLLM counts the reserved null block in this number)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 28));
  app.add_option("--max-model-len", e.max_model_len, "Longest prompt + output in tokens")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  bool prefix_on = false, prefix_off = false;
  app.add_flag("--enable-prefix-caching", prefix_on, "Automatic prefix caching (default on)");
  app.add_flag("--no-enable-prefix-caching", prefix_off, "Turn automatic prefix caching off");
  app.add_flag("--enable-lora", e.enable_lora, "Serve LoRA adapters");
  app.add_option("--max-loras", e.max_loras, "Distinct adapters per batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-cpu-loras", e.max_cpu_loras,
                 "Adapters kept in the CPU cache "
                 "(default: --max-loras)")
      ->check(CLI::PositiveNumber);
  std::vector<std::string> lora_modules;
  app.add_option("--lora-modules", lora_modules, "Adapters loaded at start, as name=path")
      ->expected(1, -1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--gpu-memory-utilization", s.gpu_memory_utilization,
                 "Reported in vllm:cache_config_info")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", s.seed, "Seed for fault rolls and answer lengths")
      ->capture_default_str();
  for (const char* flag :
       {"--dtype", "--tensor-parallel-size", "--kv-cache-dtype", "--max-lora-rank"}) {
    app.add_option_function<std::string>(
        flag, [&o, flag](const std::string&) { o.ignored_flags.push_back(flag); },
        "Accepted for vLLM command lines; no effect on the simulation");
  }
  for (const char* flag : {"--enforce-eager", "--trust-remote-code", "--disable-log-requests",
                           "--enable-chunked-prefill"}) {
    app.add_flag_callback(
        flag, [&o, flag] { o.ignored_flags.push_back(flag); },
        "Accepted for vLLM command lines; no effect on the simulation");
  }

  // Simulator flags.
  app.add_option("--time-scale", s.time_scale,
                 "Simulated seconds per real second (10 runs ten times faster than real time)")
      ->capture_default_str();
  std::string dialect = "vllm";
  app.add_option("--engine", dialect, "Metric names to expose: vllm, sglang or trtllm-serve")
      ->capture_default_str();
  auto ms_option = [&](const char* name, absl::Duration* d, const char* help) {
    return app
        .add_option_function<double>(
            name, [d](double ms) { *d = absl::Microseconds(ms * 1000.0); }, help)
        ->check(CLI::NonNegativeNumber);
  };
  ms_option("--sim-step-base-ms", &c.step_base, "Fixed cost of one engine step (6.8)");
  ms_option("--sim-prefill-ms-per-token", &c.per_prefill_token,
            "Cost per prefill token scheduled in a step (0.028)");
  ms_option("--sim-decode-ms-per-seq", &c.per_decode_seq,
            "Cost per decoding sequence in a step (0.010)");
  ms_option("--sim-decode-ms-per-kctx", &c.per_decode_kctx,
            "Cost per 1,000 context tokens of each decoding sequence (0)");
  ms_option("--sim-frontend-overhead-ms", &c.frontend_overhead,
            "API-server time before a request reaches the engine queue (15)");
  ms_option("--sim-lora-load-ms", &c.lora_load, "Loading a cold adapter into the CPU cache (200)");
  ms_option("--sim-lora-activate-ms", &c.lora_activate,
            "Bringing a CPU-cached adapter into a GPU slot (5)");
  app.add_option("--sim-lora-factor", c.lora_factor,
                 "Step-time factor per distinct adapter in a batch")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sim-output-len-mean", s.output_len_mean,
                 "Mean answer length of requests without ignore_eos")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-request-body-bytes", s.max_request_body_bytes, "Largest request body")
      ->capture_default_str();

  // Fault injection (also settable at run time: POST /sim/faults).
  app.add_option("--fault-error-rate", s.faults.error_rate,
                 "Fraction of generation requests failed with --fault-error-status")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-error-status", s.faults.error_status, "Status of injected failures")
      ->capture_default_str()
      ->check(CLI::Range(400, 599));
  app.add_option("--fault-hang-rate", s.faults.hang_rate,
                 "Fraction of generation requests never answered")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-drop-rate", s.faults.drop_rate,
                 "Fraction of generation requests whose connection drops after the first token")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--fault-metrics-delay-ms", s.faults.metrics_delay_ms,
                 "Delay before answering /metrics")
      ->check(CLI::Range(0, 3'600'000));
  app.add_flag("--fault-metrics-garbage", s.faults.metrics_garbage,
               "Answer /metrics with bytes that are not Prometheus text");
  app.add_option("-v,--v", o.verbosity, "Log verbosity (2 default, 4 debug)")
      ->capture_default_str();

  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    return absl::CancelledError(app.help());
  } catch (const CLI::ParseError& err) {
    return absl::InvalidArgumentError(StrCat(err.what(), "\n\n", app.help()));
  }
  if (prefix_on && prefix_off) {
    return absl::InvalidArgumentError(
        "--enable-prefix-caching and --no-enable-prefix-caching contradict each other");
  }
  e.enable_prefix_caching = !prefix_off;
  if (!sim::ParseMetricsDialect(dialect, &s.dialect)) {
    return absl::InvalidArgumentError(
        StrCat("--engine: \"", dialect, "\" is not one of vllm, sglang, trtllm-serve"));
  }
  for (const std::string& m : lora_modules) {
    size_t eq = m.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == m.size()) {
      return absl::InvalidArgumentError(StrCat("--lora-modules: \"", m, "\" is not name=path"));
    }
    s.lora_modules.emplace_back(m.substr(0, eq), m.substr(eq + 1));
  }
  if (auto st = sim::ValidateServerConfig(s); !st.ok()) return st;
  return o;
}

}  // namespace epp::app
