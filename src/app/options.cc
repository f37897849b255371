#include "app/options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <map>

#include "CLI/CLI.hpp"
#include "common/duration.h"
#include "common/strings.h"

namespace epp::app {
namespace {

// Go's flag package accepts `-flag`, `--flag`, `-flag=value`; CLI11 wants long flags with two
// dashes. Rewrite single-dash long flags (and `-v=N`) before parsing.
std::vector<std::string> NormalizeArgs(int argc, const char* const* argv) {
  std::vector<std::string> out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 2 && a[0] == '-' && a[1] != '-') {
      if (a.starts_with("-v=")) {
        out.push_back("-v");
        out.push_back(a.substr(3));
        continue;
      }
      bool short_verbosity = a[1] == 'v' && std::isdigit(static_cast<unsigned char>(a[2]));
      if (!short_verbosity) a = "-" + a;
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

absl::StatusOr<Options> ParseOptions(int argc, const char* const* argv) {
  Options o;
  if (const char* ns = std::getenv("NAMESPACE")) o.pool_namespace = ns;
  CLI::App app{"epp: the endpoint picker (Envoy ext_proc) for LLM inference pools"};
  app.set_help_flag("-h,--help", "Print this help");
  // Go's flag package lets a repeated flag override the earlier one; so do we.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--grpc-port", o.grpc_port, "ext_proc gRPC port")->check(CLI::Range(0, 65535));
  app.add_option("--grpc-health-port", o.grpc_health_port, "gRPC health port")
      ->check(CLI::Range(0, 65535));
  app.add_option("--metrics-port", o.metrics_port, "Admin/metrics HTTP port")
      ->check(CLI::Range(0, 65535));
  app.add_option("--pool-name", o.pool_name, "InferencePool name");
  app.add_option("--pool-namespace", o.pool_namespace,
                 "InferencePool namespace (default: $NAMESPACE, then \"default\")");
  app.add_option("--pool-group", o.pool_group, "InferencePool API group");
  app.add_option("--kubeconfig", o.kubeconfig,
                 "Kubeconfig for Kubernetes mode (default: $KUBECONFIG, then the in-cluster "
                 "service account, then ~/.kube/config)");
  app.add_option("--service-account-dir", o.service_account_dir,
                 "Where the in-cluster service-account token, ca.crt and namespace are read");
  auto* file = app.add_option("--config-file", o.config_file, "EndpointPickerConfig YAML file");
  auto* text = app.add_option("--config-text", o.config_text, "EndpointPickerConfig YAML text");
  file->excludes(text);
  app.add_flag("--secure-serving", o.secure_serving, "Serve ext_proc over TLS (default true)");
  app.add_option("--cert-path", o.cert_path, "Directory with tls.crt and tls.key");
  app.add_flag("--health-checking", o.health_checking,
               "Also serve grpc.health.v1 on the ext_proc port");
  app.add_flag("--ha-enable-leader-election", o.ha_enable_leader_election,
               "Leader election (Kubernetes mode)");
  app.add_flag("--disable-endpoint-subset-filter", o.disable_endpoint_subset_filter,
               "Ignore the x-gateway-destination-endpoint-subset hint");
  app.add_option("--refresh-metrics-interval", o.refresh_metrics_interval,
                 "Model-server metrics scrape interval (Go duration)");
  app.add_option("--max-request-body-bytes", o.max_request_body_bytes,
                 "Largest request body accepted (413 beyond)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  app.add_flag("--process-responses", o.process_responses,
               "Stream responses through epp (default true); false closes each ext_proc stream "
               "once the request is routed, so the proxy sends the response straight back");
  app.add_option("-v", o.verbosity, "Log verbosity (2 default, 4 debug, 5 trace)");
  app.add_option("--bind-address", o.bind_address, "Address the gRPC servers listen on");

  app.add_option("--endpoint-selector", o.endpoint_selector,
                 "Standalone mode label selector (not in this build: refused)");
  // Flags of the reference epp that this build accepts for compatibility and ignores.
  // Boolean ones take `--flag` or `--flag=false` like Go's flag package.
  std::map<std::string, std::string> compat;
  std::map<std::string, bool> compat_bools;
  for (const char* name :
       {"--zap-encoder", "--zap-log-level", "--zap-stacktrace-level", "--zap-time-encoding",
        "--refresh-prometheus-metrics-interval", "--metrics-staleness-threshold",
        "--endpoint-target-ports", "--model-server-metrics-scheme", "--model-server-metrics-path",
        "--model-server-metrics-port"}) {
    app.add_option(name, compat[name], "Accepted for compatibility with the reference; no effect")
        ->group("Compatibility (ignored)");
  }
  for (const char* name :
       {"--zap-devel", "--tracing", "--enable-pprof", "--metrics-endpoint-auth",
        "--enable-cert-reload", "--model-server-metrics-https-insecure-skip-verify"}) {
    compat[name];
    app.add_flag(name, compat_bools[name],
                 "Accepted for compatibility with the reference; no effect")
        ->group("Compatibility (ignored)");
  }

  std::vector<std::string> args = NormalizeArgs(argc, argv);
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    return absl::CancelledError(app.help());
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(StrCat(e.what(), "\nRun with --help for usage."));
  }
  auto interval = ParseGoDuration(o.refresh_metrics_interval);
  if (!interval || interval->count() <= 0) {
    return absl::InvalidArgumentError(StrCat("--refresh-metrics-interval: \"",
                                             o.refresh_metrics_interval,
                                             "\" is not a positive duration (e.g. 50ms)"));
  }
  o.refresh_metrics_interval_ns = *interval;
  if (o.pool_namespace.empty()) o.pool_namespace = "default";
  for (const auto& [name, value] : compat) {
    if (app.count(name) > 0) o.ignored_flags.push_back(name);
  }
  return o;
}

}  // namespace epp::app
