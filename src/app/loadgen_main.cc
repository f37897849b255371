// loadgen: an OpenAI streaming load generator (see src/loadgen/runner.h and docs/loadgen.md).
// Prints a one-screen summary; writes the JSON result file with --output.
#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "CLI/CLI.hpp"
#include "common/strings.h"
#include "loadgen/runner.h"

namespace epp::app {
namespace {

// An open loop may hold a connection per request in flight: allow as many as the hard limit.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int Fail(std::string_view message, int code) {
  std::fprintf(stderr, "loadgen: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

int Run(int argc, char** argv) {
  CLI::App app{"loadgen: OpenAI streaming load generator (TTFT, ITL, E2E, throughput)"};
  loadgen::LoadgenConfig c;
  std::string arrival = "poisson";
  std::string duration = "0";
  std::string timeout = "300s";
  std::string progress = "10s";
  std::vector<std::string> headers;
  int prompt_bytes = c.long_prompt.prompt_tokens * 4;
  int output_tokens = 0;
  int prompt_tokens = 0;

  app.add_option("--target", c.target, "Server or gateway, http://host:port")
      ->capture_default_str();
  app.add_option("--endpoint", c.endpoint, "/v1/completions or /v1/chat/completions")
      ->capture_default_str();
  app.add_option("--model", c.model, "Model name sent (all workloads but multi-lora)")
      ->capture_default_str();
  app.add_option("--workload", c.workload, "shared-prefix, multi-lora, sharegpt or long-prompt")
      ->capture_default_str();
  // Workload parameters; each applies to the workloads listed with it below.
  app.add_option("--groups", c.shared_prefix.groups, "shared-prefix: groups (system prompts)")
      ->capture_default_str();
  app.add_option("--prompts-per-group", c.shared_prefix.prompts_per_group,
                 "shared-prefix: prompts per group")
      ->capture_default_str();
  app.add_option("--system-tokens", c.shared_prefix.system_tokens,
                 "shared-prefix: system prompt length in tokens (4 bytes each)")
      ->capture_default_str();
  app.add_option("--question-tokens", c.shared_prefix.question_tokens,
                 "shared-prefix: question length in tokens")
      ->capture_default_str();
  app.add_option("--output-tokens", output_tokens,
                 "shared-prefix (1000), multi-lora (128), long-prompt (100): max_tokens");
  app.add_option("--adapters", c.multi_lora.adapters, "multi-lora: adapters")
      ->capture_default_str();
  app.add_option("--adapter-prefix", c.multi_lora.adapter_prefix,
                 "multi-lora: adapter k is named <prefix>k")
      ->capture_default_str();
  app.add_option("--adapter-weights", c.multi_lora.tier_weights,
                 "multi-lora: request shares of equal tiers of adapters")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--prompt-tokens", prompt_tokens, "multi-lora: prompt length in tokens (512)");
  app.add_option("--input-tokens-median", c.sharegpt.prompt_tokens_median,
                 "sharegpt: log-normal prompt length, median")
      ->capture_default_str();
  app.add_option("--input-tokens-sigma", c.sharegpt.prompt_tokens_sigma,
                 "sharegpt: log-normal prompt length, sigma")
      ->capture_default_str();
  app.add_option("--min-input-tokens", c.sharegpt.min_prompt_tokens, "sharegpt: clip")
      ->capture_default_str();
  app.add_option("--max-input-tokens", c.sharegpt.max_prompt_tokens, "sharegpt: clip")
      ->capture_default_str();
  app.add_option("--output-tokens-median", c.sharegpt.output_tokens_median,
                 "sharegpt: log-normal output length, median")
      ->capture_default_str();
  app.add_option("--output-tokens-sigma", c.sharegpt.output_tokens_sigma,
                 "sharegpt: log-normal output length, sigma")
      ->capture_default_str();
  app.add_option("--min-output-tokens", c.sharegpt.min_output_tokens, "sharegpt: clip")
      ->capture_default_str();
  app.add_option("--max-output-tokens", c.sharegpt.max_output_tokens, "sharegpt: clip")
      ->capture_default_str();
  app.add_option("--prompt-bytes", prompt_bytes, "long-prompt: prompt size (4 bytes a token)")
      ->capture_default_str();
  // Load.
  app.add_option("--rate", c.rate, "Open loop: requests per second");
  app.add_option("--arrival", arrival, "Open loop: poisson or constant")
      ->check(CLI::IsMember({"poisson", "constant"}))
      ->capture_default_str();
  app.add_option("--concurrency", c.concurrency, "Closed loop: requests in flight");
  app.add_option("--num-requests", c.num_requests, "Requests to send (100 without --duration)");
  app.add_option("--duration", duration, "Stop sending after this long (90s, 5m, or seconds)");
  app.add_option("--seed", c.seed, "Workload and arrival seed")->capture_default_str();
  app.add_option("--timeout", timeout, "Per request: connect, send and the whole answer")
      ->capture_default_str();
  app.add_option("--header", headers, "name:value sent with every request (repeatable)");
  app.add_option("--output", c.output, "Write the JSON result here");
  app.add_flag("--records", c.records, "Include per-request records in the JSON result");
  app.add_option("--progress", progress, "A progress line on stderr this often (0: none)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // A parameter of another workload is a mistake worth a message, not silence.
  const std::map<std::string, std::set<std::string>> applies = {
      {"--groups", {"shared-prefix"}},
      {"--prompts-per-group", {"shared-prefix"}},
      {"--system-tokens", {"shared-prefix"}},
      {"--question-tokens", {"shared-prefix"}},
      {"--output-tokens", {"shared-prefix", "multi-lora", "long-prompt"}},
      {"--adapters", {"multi-lora"}},
      {"--adapter-prefix", {"multi-lora"}},
      {"--adapter-weights", {"multi-lora"}},
      {"--prompt-tokens", {"multi-lora"}},
      {"--input-tokens-median", {"sharegpt"}},
      {"--input-tokens-sigma", {"sharegpt"}},
      {"--min-input-tokens", {"sharegpt"}},
      {"--max-input-tokens", {"sharegpt"}},
      {"--output-tokens-median", {"sharegpt"}},
      {"--output-tokens-sigma", {"sharegpt"}},
      {"--min-output-tokens", {"sharegpt"}},
      {"--max-output-tokens", {"sharegpt"}},
      {"--prompt-bytes", {"long-prompt"}},
  };
  for (const auto& [flag, workloads] : applies) {
    if (app.count(flag) > 0 && workloads.count(c.workload) == 0) {
      return Fail(StrCat(flag, ": does not apply to --workload ", c.workload), 2);
    }
  }
  if (app.count("--arrival") > 0 && app.count("--rate") == 0) {
    return Fail("--arrival: applies to an open loop (--rate) only", 2);
  }
  if (app.count("--output-tokens") > 0) {
    c.shared_prefix.output_tokens = output_tokens;
    c.multi_lora.output_tokens = output_tokens;
    c.long_prompt.output_tokens = output_tokens;
  }
  if (app.count("--prompt-tokens") > 0) c.multi_lora.prompt_tokens = prompt_tokens;
  if (prompt_bytes < 4) return Fail("--prompt-bytes: must be >= 4", 2);
  c.long_prompt.prompt_tokens = prompt_bytes / 4;
  c.poisson = arrival == "poisson";
  for (const std::string& h : headers) {
    auto parsed = loadgen::ParseHeader(h);
    if (!parsed.ok()) return Fail(SV(parsed.status().message()), 2);
    c.headers.push_back(*std::move(parsed));
  }
  auto duration_s = loadgen::ParseSeconds("--duration", duration);
  if (!duration_s.ok()) return Fail(SV(duration_s.status().message()), 2);
  c.duration_s = *duration_s;
  auto timeout_s = loadgen::ParseSeconds("--timeout", timeout);
  if (!timeout_s.ok()) return Fail(SV(timeout_s.status().message()), 2);
  c.timeout_s = *timeout_s;
  auto progress_s = loadgen::ParseSeconds("--progress", progress);
  if (!progress_s.ok()) return Fail(SV(progress_s.status().message()), 2);
  if (auto st = loadgen::ValidateConfig(c); !st.ok()) return Fail(SV(st.message()), 2);

  RaiseOpenFileLimit();
  loadgen::RunOptions options;
  options.stop_on_signals = true;
  options.progress_every_s = *progress_s;
  auto result = loadgen::RunLoad(c, options);
  if (!result.ok()) return Fail(SV(result.status().message()), 1);
  std::string text = loadgen::TextSummary(c, result->summary);
  std::fputs(text.c_str(), stdout);
  if (!c.output.empty()) {
    std::ofstream f(c.output, std::ios::binary | std::ios::trunc);
    f << loadgen::ResultJson(c, result->summary, c.records ? &result->records : nullptr);
    f.close();
    if (!f) return Fail(StrCat("--output: cannot write ", c.output), 1);
    std::printf("output:  %s\n", c.output.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace epp::app

int main(int argc, char** argv) { return epp::app::Run(argc, argv); }
