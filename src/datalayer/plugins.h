// The data-layer plugins of an EndpointPickerConfig, with the reference names and parameters.
//
//   metrics-data-source     parameters: scheme ("http" or "https"), path (default
//                           "/metrics"), insecureSkipVerify (bool, default true: with https,
//                           accept any certificate; false verifies it against the system CAs
//                           and the endpoint's address)
//   core-metrics-extractor  parameters (llm-d's names):
//     defaultEngine   engine for endpoints without the label (default "vllm"; a built-in
//                     or an engineConfigs name)
//     engineLabelKey  endpoint label naming the engine (default
//                     "inference.networking.k8s.io/engine-type")
//     engineConfigs   list of {name, queuedRequestsSpec, runningRequestsSpec, kvUsageSpec,
//                     loraSpec, cacheInfoSpec, cacheBlockSizeLabelName, cacheNumBlocksLabelName,
//                     cacheBlockSizeSpec, cacheNumBlocksSpec}: metric specs in the
//                     `name{label=value}` syntax, "" or absent disables one; an entry named
//                     like a built-in (vllm, sglang, trtllm-serve, triton-tensorrt-llm)
//                     replaces it wholesale
//
// With no `dataLayer` in the config (or one without `sources`) epp scrapes with both defaults;
// `dataLayer: {sources: []}` turns scraping off.
#ifndef EPP_DATALAYER_PLUGINS_H_
#define EPP_DATALAYER_PLUGINS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/plugin.h"
#include "datalayer/engine_metrics.h"

namespace epp::datalayer {

inline constexpr std::string_view kMetricsDataSourceType = "metrics-data-source";
inline constexpr std::string_view kCoreMetricsExtractorType = "core-metrics-extractor";

class MetricsDataSource : public Plugin {
 public:
  MetricsDataSource(std::string name, std::string scheme, std::string path, bool insecure)
      : Plugin(std::move(name)),
        scheme_(std::move(scheme)),
        path_(std::move(path)),
        insecure_skip_verify_(insecure) {}
  std::string_view Type() const override { return kMetricsDataSourceType; }
  const std::string& scheme() const { return scheme_; }
  const std::string& path() const { return path_; }
  bool insecure_skip_verify() const { return insecure_skip_verify_; }
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  std::string scheme_;
  std::string path_;
  bool insecure_skip_verify_;
};

class CoreMetricsExtractor : public Plugin {
 public:
  CoreMetricsExtractor(std::string name, std::string default_engine, std::string label_key,
                       std::vector<EngineConfig> engines)
      : Plugin(std::move(name)),
        default_engine_(std::move(default_engine)),
        engine_label_key_(std::move(label_key)),
        engines_(std::move(engines)) {}
  std::string_view Type() const override { return kCoreMetricsExtractorType; }
  const std::string& default_engine() const { return default_engine_; }
  const std::string& engine_label_key() const { return engine_label_key_; }
  // The user's engine configs, then the built-ins they do not replace.
  const std::vector<EngineConfig>& engines() const { return engines_; }
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  std::string default_engine_;
  std::string engine_label_key_;
  std::vector<EngineConfig> engines_;
};

}  // namespace epp::datalayer

#endif  // EPP_DATALAYER_PLUGINS_H_
