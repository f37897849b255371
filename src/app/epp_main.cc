// epp: wiring only. Flags → config → plugins → scheduler → discovery → gRPC servers; then wait
// for SIGINT/SIGTERM and shut down in reverse order.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <cstdio>
#include <limits>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "admin/debug_endpoints.h"
#include "app/builtin_plugins.h"
#include "app/options.h"
#include "common/host_port.h"
#include "common/logging.h"
#include "common/strings.h"
#include "config/endpoint_picker_config.h"
#include "datalayer/plugins.h"
#include "datalayer/scraper.h"
#include "datastore/datastore.h"
#include "datastore/model_rewrites.h"
#include "datastore/objectives.h"
#include "discovery/file_discovery.h"
#include "extproc/server.h"
#include "k8s/kubernetes_mode.h"
#include "net/http_server.h"
#include "net/tls.h"
#include "requestcontrol/director.h"
#include "scheduling/plugins/saturation_detectors.h"
#include "scheduling/scheduler.h"

namespace epp::app {
namespace {

// The configuration used in Kubernetes mode when neither --config-file nor --config-text is
// given: the reference's default (its Helm chart's default-plugins.yaml).
constexpr std::string_view kDefaultKubernetesConfig = R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: max-score-picker
- type: single-profile-handler
- type: metrics-data-source
- type: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: max-score-picker
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors:
    - pluginRef: core-metrics-extractor
)";

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "epp: %s\n", std::string(s.message()).c_str());
  return 2;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const Options& o) {
  if (!o.secure_serving) return grpc::InsecureServerCredentials();
  absl::StatusOr<net::KeyCertPair> pair =
      o.cert_path.empty() ? net::GenerateSelfSigned() : net::LoadKeyCertPair(o.cert_path);
  if (!pair.ok()) return pair.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({pair->private_key_pem, pair->cert_chain_pem});
  return grpc::SslServerCredentials(ssl);
}

void ApplyChannelArgs(grpc::ServerBuilder& b, uint64_t max_request_body_bytes) {
  // BUFFERED mode carries the whole body in one message. The cap bounds what one message can
  // make gRPC buffer; up to it the stream handler answers 413 for bodies over the limit, past it
  // gRPC fails the stream (Envoy answers 500). Keep Envoy's buffer limit at or below
  // --max-request-body-bytes and Envoy answers 413 itself first.
  b.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<uint64_t>(max_request_body_bytes + (1 << 20), std::numeric_limits<int>::max())));
  // A stale server on the port must make bind fail, not share the port silently.
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Tolerate proxies that keep connections alive with frequent pings.
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
}

// The scraper configuration from `dataLayer`, with the reference defaults: no `dataLayer` (or no
// `sources`) scrapes with metrics-data-source and core-metrics-extractor defaults; an empty
// `sources` list turns scraping off (nullopt).
absl::StatusOr<std::optional<datalayer::ScraperOptions>> DataLayerOptions(
    const config::EndpointPickerConfig& cfg, const config::PluginSet& plugins,
    const Options& opts) {
  datalayer::ScraperOptions so;
  so.interval = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::max(opts.refresh_metrics_interval_ns, std::chrono::nanoseconds(1'000'000)));
  const auto& dl = cfg.data_layer;
  if (!dl.sources_present) return so;
  if (dl.sources.empty()) return std::nullopt;
  if (dl.sources.size() > 1) {
    return absl::InvalidArgumentError("dataLayer.sources: only one metrics source is supported");
  }
  const auto& src = dl.sources[0];
  auto* source = plugins.FindAs<datalayer::MetricsDataSource>(src.plugin_ref);
  if (source == nullptr) {
    return absl::InvalidArgumentError(StrCat("dataLayer.sources[0]: plugin \"", src.plugin_ref,
                                             "\" is not a metrics-data-source"));
  }
  so.path = source->path();
  so.tls = source->scheme() == "https";
  so.insecure_skip_verify = source->insecure_skip_verify();
  for (const auto& ref : src.extractor_refs) {
    auto* extractor = plugins.FindAs<datalayer::CoreMetricsExtractor>(ref);
    if (extractor == nullptr) {
      return absl::InvalidArgumentError(StrCat("dataLayer.sources[0].extractors: plugin \"", ref,
                                               "\" is not a core-metrics-extractor"));
    }
    so.default_engine = extractor->default_engine();
    so.engine_label = extractor->engine_label_key();
    so.engines = extractor->engines();
  }
  return so;
}

int Run(int argc, char** argv) {
  auto opts = ParseOptions(argc, argv);
  if (!opts.ok()) {
    if (absl::IsCancelled(opts.status())) {
      std::printf("%s", std::string(opts.status().message()).c_str());
      return 0;
    }
    return Fail(opts.status());
  }
  SetLogVerbosity(opts->verbosity);
  // Mutex deadlock detection keeps a global lock-order graph; it costs every lock on the hot
  // path and our locks are leaf locks (never held while calling out).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  for (const auto& flag : opts->ignored_flags) {
    EPP_LOG_WARN("{} is accepted for compatibility with the reference epp and has no effect", flag);
  }
  if (!opts->endpoint_selector.empty()) {
    return Fail(absl::UnimplementedError(
        "--endpoint-selector (standalone mode without an InferencePool) is not in this build yet; "
        "use a file-discovery plugin"));
  }
  // Kubernetes mode: the InferencePool named by --pool-name, from the API server.
  const bool kubernetes_mode = !opts->pool_name.empty();
  if (opts->ha_enable_leader_election && !kubernetes_mode) {
    return Fail(absl::InvalidArgumentError(
        "--ha-enable-leader-election needs Kubernetes mode (--pool-name)"));
  }

  absl::StatusOr<config::EndpointPickerConfig> cfg;
  if (!opts->config_file.empty()) {
    cfg = config::LoadEndpointPickerConfigFile(opts->config_file);
  } else if (!opts->config_text.empty()) {
    cfg = config::ParseEndpointPickerConfig(opts->config_text);
  } else if (kubernetes_mode) {
    cfg = config::ParseEndpointPickerConfig(kDefaultKubernetesConfig);
  } else {
    return Fail(absl::InvalidArgumentError(
        "no configuration and no --pool-name: pass --pool-name (Kubernetes mode), or "
        "--config-file / --config-text with an EndpointPickerConfig whose dataLayer.discovery "
        "names a file-discovery plugin"));
  }
  if (!cfg.ok()) return Fail(cfg.status());

  // Declared before the plugins so they outlive the discovery watcher, which writes into them
  // until the plugin set is destroyed (its destructor stops the watcher).
  datastore::Datastore datastore;
  datastore::ModelRewriteStore model_rewrites;
  datastore::ObjectiveStore objectives;
  PluginRegistry registry;
  RegisterBuiltinPlugins(registry);
  auto plugins = config::InstantiatePlugins(*cfg, registry);
  if (!plugins.ok()) return Fail(plugins.status());
  auto scheduler = scheduling::BuildScheduler(*cfg, **plugins, registry);
  if (!scheduler.ok()) return Fail(scheduler.status());

  discovery::DiscoveryPlugin* discovery = nullptr;
  if (kubernetes_mode && cfg->data_layer.discovery_ref) {
    return Fail(absl::InvalidArgumentError(StrCat(
        "--pool-name (Kubernetes mode) and dataLayer.discovery (\"", *cfg->data_layer.discovery_ref,
        "\") both name where endpoints come from; use one")));
  }
  if (!kubernetes_mode) {
    if (!cfg->data_layer.discovery_ref) {
      return Fail(absl::InvalidArgumentError(
          "dataLayer.discovery is not set and there is no --pool-name: endpoints come from the "
          "InferencePool (--pool-name) or from a file-discovery plugin"));
    }
    discovery = (*plugins)->FindAs<discovery::DiscoveryPlugin>(*cfg->data_layer.discovery_ref);
    if (discovery == nullptr) {
      return Fail(absl::InvalidArgumentError(StrCat("dataLayer.discovery: plugin \"",
                                                    *cfg->data_layer.discovery_ref,
                                                    "\" is not a discovery plugin")));
    }
  }

  // Admission: the configured saturation detector, else the reference's default.
  std::unique_ptr<Plugin> default_detector;
  const scheduling::SaturationDetector* detector = nullptr;
  if (cfg->saturation_detector_ref) {
    detector = (*plugins)->FindAs<scheduling::SaturationDetector>(*cfg->saturation_detector_ref);
    if (detector == nullptr) {
      return Fail(absl::InvalidArgumentError(StrCat("saturationDetector: plugin \"",
                                                    *cfg->saturation_detector_ref,
                                                    "\" is not a saturation detector")));
    }
    // Admission runs before any scheduling cycle, so a detector that reads a producer's
    // per-cycle data (the concurrency detector's in-flight counts) would see every endpoint
    // idle there and never shed.
    if (dynamic_cast<const scheduling::ProducerConsumer*>(detector) != nullptr) {
      return Fail(absl::InvalidArgumentError(
          StrCat("saturationDetector: plugin \"", *cfg->saturation_detector_ref,
                 "\" reads per-cycle producer data and cannot judge admission; use a "
                 "utilization-detector")));
    }
  } else {
    auto made = scheduling::UtilizationDetector::Create("utilization-detector", YAML::Node());
    if (!made.ok()) return Fail(made.status());
    default_detector = std::move(*made);
    detector = dynamic_cast<const scheduling::SaturationDetector*>(default_detector.get());
  }

  auto scraper_options = DataLayerOptions(*cfg, **plugins, *opts);
  if (!scraper_options.ok()) return Fail(scraper_options.status());

  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // The discovery source feeds both the endpoints and the InferenceModelRewrite rules; in
  // Kubernetes mode the API server also feeds the InferenceObjectives.
  std::unique_ptr<k8s::KubernetesMode> kube;
  if (kubernetes_mode) {
    auto rest = k8s::LoadRestConfig(opts->kubeconfig, opts->service_account_dir);
    if (!rest.ok()) return Fail(rest.status());
    k8s::KubernetesModeOptions ko;
    ko.pool_name = opts->pool_name;
    ko.pool_namespace = opts->pool_namespace;
    ko.pool_group = opts->pool_group;
    ko.leader_election = opts->ha_enable_leader_election;
    auto made =
        k8s::KubernetesMode::Create(std::make_shared<const k8s::RestConfig>(std::move(*rest)), ko,
                                    datastore, model_rewrites, objectives);
    if (!made.ok()) return Fail(made.status());
    kube = std::move(*made);
    kube->Start();
    EPP_LOG_INFO("Kubernetes mode: InferencePool {}/{} from the API server{}", opts->pool_namespace,
                 opts->pool_name, opts->ha_enable_leader_election ? ", leader election on" : "");
    // Not waiting for the first lists: the servers (liveness, readiness, admin) come up at once
    // and readiness follows the pool, so an API server that is down at start shows there and
    // on /debug/kubernetes rather than as a process that does not answer.
  } else if (absl::Status s = discovery->Start(datastore, &model_rewrites); !s.ok()) {
    return Fail(s);
  }
  // Declared after the datastore it reads, so it stops first.
  std::unique_ptr<datalayer::Scraper> scraper;
  if (*scraper_options) {
    scraper = std::make_unique<datalayer::Scraper>(datastore, **scraper_options);
    scraper->Start();
    EPP_LOG_INFO("scraping {}://<endpoint>{} every {} ms",
                 (*scraper_options)->tls ? "https" : "http", (*scraper_options)->path,
                 (*scraper_options)->interval.count());
  } else {
    EPP_LOG_INFO("metrics scraping is off (dataLayer.sources is empty)");
  }

  requestcontrol::Director director(datastore, **scheduler, opts->disable_endpoint_subset_filter,
                                    &model_rewrites,
                                    requestcontrol::Admission{&objectives, detector});
  extproc::StreamOptions stream_options;
  stream_options.max_request_body_bytes = opts->max_request_body_bytes;
  stream_options.process_responses = opts->process_responses;
  extproc::ExternalProcessorService service(director, stream_options);
  auto live = [&datastore] { return datastore.GetSnapshot()->pool_ready; };
  extproc::HealthService health(
      live, [&kube] { return !kube || kube->IsLeader(); }, opts->ha_enable_leader_election);

  // Admin HTTP on --metrics-port: what epp sees of every endpoint.
  net::HttpServer admin(
      opts->bind_address, static_cast<uint16_t>(opts->metrics_port),
      [&datastore, &scraper, &kube, &service](const std::string&, const std::string& target) {
        std::string path = target.substr(0, target.find('?'));
        if (path == "/debug/kubernetes" && kube) {
          return net::HttpResponse{200, "application/json", kube->DebugJson()};
        }
        if (path == "/debug/extproc") {
          // A stream lives as long as its request (until the response ends when responses are
          // processed), so this is the number of requests epp is routing or watching.
          return net::HttpResponse{200, "application/json",
                                   StrCat("{\"active_streams\":", service.active_streams(), "}\n")};
        }
        if (path != "/debug/endpoints") {
          return net::HttpResponse{404, "text/plain; charset=utf-8",
                                   "not found; try /debug/endpoints or /debug/extproc\n"};
        }
        auto statuses =
            scraper ? scraper->Statuses() : std::map<std::string, datalayer::ScrapeStatus>{};
        auto last_error = [&statuses](const std::string& key) {
          auto it = statuses.find(key);
          return it == statuses.end() ? std::string() : it->second.last_error;
        };
        return net::HttpResponse{200, "application/json",
                                 admin::DebugEndpointsJson(*datastore.GetSnapshot(), last_error,
                                                           std::chrono::system_clock::now())};
      });
  auto admin_port = admin.Start();
  if (!admin_port.ok()) return Fail(admin_port.status());

  auto creds = Credentials(*opts);
  if (!creds.ok()) return Fail(creds.status());
  int grpc_port = 0, health_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(JoinHostPort(opts->bind_address, opts->grpc_port), *creds, &grpc_port);
  builder.RegisterService(&service);
  if (opts->health_checking) builder.RegisterService(&health);
  ApplyChannelArgs(builder, opts->max_request_body_bytes);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || grpc_port == 0) {
    return Fail(absl::UnavailableError(StrCat("cannot listen on ext_proc port ", opts->grpc_port)));
  }
  grpc::ServerBuilder health_builder;
  health_builder.AddListeningPort(JoinHostPort(opts->bind_address, opts->grpc_health_port),
                                  grpc::InsecureServerCredentials(), &health_port);
  health_builder.RegisterService(&health);
  health_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> health_server = health_builder.BuildAndStart();
  if (!health_server || health_port == 0) {
    server->Shutdown();
    return Fail(
        absl::UnavailableError(StrCat("cannot listen on health port ", opts->grpc_health_port)));
  }
  EPP_LOG_INFO("epp serving ext_proc on port {} ({}), health on port {}, admin on port {}",
               grpc_port, opts->secure_serving ? "TLS" : "plaintext", health_port, *admin_port);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  EPP_LOG_INFO("epp: signal {} received, shutting down", sig);
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  server->Shutdown(deadline);
  health_server->Shutdown(deadline);
  server->Wait();
  health_server->Wait();
  admin.Stop();
  if (scraper) scraper->Stop();
  if (kube) kube->Stop();
  if (discovery) discovery->Stop();
  return 0;
}

}  // namespace
}  // namespace epp::app

int main(int argc, char** argv) { return epp::app::Run(argc, argv); }
