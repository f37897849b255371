#include "datalayer/plugins.h"

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

absl::StatusOr<std::unique_ptr<Plugin>> CoreMetricsExtractor::Create(const std::string& name,
                                                                     const YAML::Node& params) {
  ParamReader reader(params);
  std::string engine = reader.String("defaultEngine", "vllm");
  RETURN_IF_ERROR(reader.Finish());
  if (FindEngine(BuiltinEngines(), engine) == nullptr) {
    return absl::InvalidArgumentError(
        StrCat("parameter \"defaultEngine\": unknown engine \"", engine,
               "\" (known: vllm, sglang, trtllm-serve, triton-tensorrt-llm)"));
  }
  return std::make_unique<CoreMetricsExtractor>(name, engine);
}

}  // namespace epp::datalayer
