// Command-line flags of `epp`, compatible with the GIE v1.5 / llm-d-router endpoint picker
// (kebab-case, Go-style `-flag`, `--flag=value`, `-v=N` all accepted).
#ifndef EPP_APP_OPTIONS_H_
#define EPP_APP_OPTIONS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace epp::app {

struct Options {
  int grpc_port = 9002;
  int grpc_health_port = 9003;
  int metrics_port = 9090;
  std::string pool_name;
  std::string pool_namespace;
  std::string pool_group = "inference.networking.k8s.io";
  // Kubernetes mode (--pool-name set): how to reach the API server.
  std::string kubeconfig;
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  std::string config_file;
  std::string config_text;
  bool secure_serving = true;
  std::string cert_path;
  bool health_checking = false;
  bool ha_enable_leader_election = false;
  bool disable_endpoint_subset_filter = false;
  std::string refresh_metrics_interval = "50ms";
  std::chrono::nanoseconds refresh_metrics_interval_ns{50'000'000};  // parsed from the above
  uint64_t max_request_body_bytes = 64ull << 20;
  bool process_responses = true;
  int verbosity = 2;
  std::string bind_address = "0.0.0.0";
  // Reference flags given on the command line that this build accepts but does not act on
  // (e.g. "--tracing"); main logs a warning for each so a reused Deployment keeps starting.
  std::vector<std::string> ignored_flags;
  // Standalone mode without an InferencePool (reference --endpoint-selector): not in this
  // build; main refuses to start when it is set.
  std::string endpoint_selector;
};

// Parses argv. Returns InvalidArgument naming the flag for unknown flags and bad values; the
// message includes usage. `--help` yields a Cancelled status whose message is the usage text.
absl::StatusOr<Options> ParseOptions(int argc, const char* const* argv);

}  // namespace epp::app

#endif  // EPP_APP_OPTIONS_H_
