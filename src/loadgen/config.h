// The load generator's configuration: target, API, workload, load shape, limits and output, as
// the `loadgen` flags set it; its validation, and its JSON echo in the result file.
#ifndef EPP_LOADGEN_CONFIG_H_
#define EPP_LOADGEN_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/host_port.h"
#include "loadgen/workload.h"

namespace epp::loadgen {

struct LoadgenConfig {
  std::string target = "http://127.0.0.1:8000";            // http://host:port
  std::string endpoint = "/v1/completions";                // or /v1/chat/completions
  std::string model = "meta-llama/Llama-3.1-8B-Instruct";  // modelsim's default served name

  std::string workload = "shared-prefix";  // shared-prefix, multi-lora, sharegpt, long-prompt
  SharedPrefixSpec shared_prefix;          // each spec's `model` is replaced by `model`
  MultiLoraSpec multi_lora;                // models are the adapters' names
  NoSharingSpec sharegpt;
  LongPromptSpec long_prompt;

  // Exactly one of: an open loop at `rate` requests/s, or a closed loop of `concurrency`
  // requests in flight.
  double rate = 0;
  bool poisson = true;  // open loop: Poisson arrivals, else constant spacing
  int concurrency = 0;
  // When to stop sending: after `num_requests` and/or `duration_s` (whichever comes first);
  // with neither, 100 requests.
  int64_t num_requests = 0;
  double duration_s = 0;

  uint64_t seed = 1;
  double timeout_s = 300;  // per request: connect, write and the whole answer
  std::vector<std::pair<std::string, std::string>> headers;

  std::string output;    // the result JSON file; empty: none
  bool records = false;  // include per-request records in it
};

// Checks the configuration; errors name the flag (e.g. "--rate: must be > 0").
absl::Status ValidateConfig(const LoadgenConfig& config);

// Parses "http://host:port" (host a name, IPv4, or [IPv6]; port default 80; no path).
absl::StatusOr<HostPort> ParseTarget(std::string_view url);

// Parses a time flag: seconds as a plain number ("2.5"), or a Go duration ("500ms", "2m").
absl::StatusOr<double> ParseSeconds(std::string_view flag, std::string_view text);

// Parses a --header value "name:value" (spaces around the value trimmed).
absl::StatusOr<std::pair<std::string, std::string>> ParseHeader(std::string_view text);

// The workload spec the configuration selects, with the model applied. Requires a valid
// configuration.
WorkloadSpec SelectedSpec(const LoadgenConfig& config);

// The number of requests to send, or 0 when only the duration limits them.
int64_t RequestLimit(const LoadgenConfig& config);

// "poisson 20 req/s", "constant 5 req/s" or "closed loop, concurrency 8".
std::string LoadShape(const LoadgenConfig& config);

// The configuration as a JSON object (the workload's own parameters only).
std::string ConfigJson(const LoadgenConfig& config);

}  // namespace epp::loadgen

#endif  // EPP_LOADGEN_CONFIG_H_
