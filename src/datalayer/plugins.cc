#include "datalayer/plugins.h"

#include <algorithm>

#include "common/status_macros.h"
#include "common/strings.h"
#include "datalayer/engine_metrics.h"

namespace epp::datalayer {

absl::StatusOr<std::unique_ptr<Plugin>> MetricsDataSource::Create(const std::string& name,
                                                                  const YAML::Node& params) {
  ParamReader reader(params);
  std::string scheme = reader.String("scheme", "http");
  std::string path = reader.String("path", "/metrics");
  bool insecure = reader.Bool("insecureSkipVerify", true);
  RETURN_IF_ERROR(reader.Finish());
  if (scheme != "http" && scheme != "https") {
    return absl::InvalidArgumentError(
        StrCat("parameter \"scheme\" must be http or https; got \"", scheme, "\""));
  }
  if (path.empty() || path.front() != '/') {
    return absl::InvalidArgumentError(
        StrCat("parameter \"path\" must start with '/'; got \"", path, "\""));
  }
  return std::make_unique<MetricsDataSource>(name, scheme, path, insecure);
}

namespace {

// One engineConfigs entry; errors name `where` and the field.
absl::StatusOr<EngineConfig> ParseEngineConfig(const YAML::Node& n, const std::string& where) {
  if (!n.IsMap()) return absl::InvalidArgumentError(StrCat(where, ": must be a map"));
  static const std::vector<std::string> kKeys = {"name",
                                                 "queuedRequestsSpec",
                                                 "runningRequestsSpec",
                                                 "kvUsageSpec",
                                                 "loraSpec",
                                                 "cacheInfoSpec",
                                                 "cacheBlockSizeLabelName",
                                                 "cacheNumBlocksLabelName",
                                                 "cacheBlockSizeSpec",
                                                 "cacheNumBlocksSpec"};
  for (const auto& kv : n) {
    std::string key = kv.first.as<std::string>();
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      return absl::InvalidArgumentError(StrCat(where, ".", key, ": unknown field"));
    }
    if (!kv.second.IsScalar() && !kv.second.IsNull()) {
      return absl::InvalidArgumentError(StrCat(where, ".", key, ": must be a string"));
    }
  }
  auto str = [&](const char* key) {
    return n[key] && n[key].IsScalar() ? n[key].as<std::string>() : std::string();
  };
  EngineConfig e;
  e.name = str("name");
  if (e.name.empty()) return absl::InvalidArgumentError(StrCat(where, ".name: required"));
  auto spec = [&](const char* key) -> absl::StatusOr<MetricSpec> {
    auto parsed = ParseMetricSpec(str(key));
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          StrCat(where, ".", key, ": ", SV(parsed.status().message())));
    }
    return *parsed;
  };
  auto one = [&](const char* key, std::vector<MetricSpec>* out) -> absl::Status {
    ASSIGN_OR_RETURN(MetricSpec m, spec(key));
    if (!m.name.empty()) out->push_back(std::move(m));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(one("queuedRequestsSpec", &e.queued));
  RETURN_IF_ERROR(one("runningRequestsSpec", &e.running));
  RETURN_IF_ERROR(one("kvUsageSpec", &e.kv_usage));
  ASSIGN_OR_RETURN(e.lora_info, spec("loraSpec"));
  ASSIGN_OR_RETURN(e.cache_info, spec("cacheInfoSpec"));
  ASSIGN_OR_RETURN(e.block_size, spec("cacheBlockSizeSpec"));
  ASSIGN_OR_RETURN(e.num_blocks, spec("cacheNumBlocksSpec"));
  e.cache_block_size_label = str("cacheBlockSizeLabelName");
  e.cache_num_blocks_label = str("cacheNumBlocksLabelName");
  if (e.cache_block_size_label.empty()) e.cache_block_size_label = "block_size";
  if (e.cache_num_blocks_label.empty()) e.cache_num_blocks_label = "num_gpu_blocks";
  return e;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Plugin>> CoreMetricsExtractor::Create(const std::string& name,
                                                                     const YAML::Node& params) {
  ParamReader reader(params);
  std::string engine = reader.String("defaultEngine", "vllm");
  std::string label = reader.String("engineLabelKey", "inference.networking.k8s.io/engine-type");
  YAML::Node configs = reader.Node("engineConfigs");
  RETURN_IF_ERROR(reader.Finish());
  std::vector<EngineConfig> engines;
  if (configs && !configs.IsNull()) {
    if (!configs.IsSequence()) {
      return absl::InvalidArgumentError("parameter \"engineConfigs\" must be a list");
    }
    for (size_t i = 0; i < configs.size(); ++i) {
      ASSIGN_OR_RETURN(EngineConfig e,
                       ParseEngineConfig(configs[i], StrCat("engineConfigs[", i, "]")));
      if (FindEngine(engines, e.name) != nullptr) {
        return absl::InvalidArgumentError(
            StrCat("engineConfigs[", i, "].name: \"", e.name, "\" is configured twice"));
      }
      engines.push_back(std::move(e));
    }
  }
  if (label.empty()) {
    return absl::InvalidArgumentError("parameter \"engineLabelKey\" must not be empty");
  }
  for (const EngineConfig& b : BuiltinEngines()) {
    if (FindEngine(engines, b.name) == nullptr) engines.push_back(b);
  }
  if (FindEngine(engines, engine) == nullptr) {
    std::vector<std::string> names;
    for (const auto& e : engines) names.push_back(e.name);
    return absl::InvalidArgumentError(StrCat("parameter \"defaultEngine\": unknown engine \"",
                                             engine, "\" (known: ", StrJoin(names, ", "), ")"));
  }
  return std::make_unique<CoreMetricsExtractor>(name, engine, label, std::move(engines));
}

}  // namespace epp::datalayer
