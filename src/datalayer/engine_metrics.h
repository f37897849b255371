// Engine metric mappings of the GIE model-server protocol (vLLM, SGLang, trtllm-serve, Triton
// TensorRT-LLM) and the extraction of one endpoint's Metrics from its exposition page.
//
// A MetricSpec is a PromQL-style instant selector `name{label=value,...}` (quotes optional); an
// empty spec disables that metric. Among the series that match a spec, the one with the
// newest timestamp wins (the last printed when there are none). For the LoRA info metric the
// series with the largest value wins (its value is the time of the update), and its adapter
// lists are split on commas and trimmed.
#ifndef EPP_DATALAYER_ENGINE_METRICS_H_
#define EPP_DATALAYER_ENGINE_METRICS_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "datastore/metrics.h"

namespace epp::datalayer {

struct MetricSpec {
  std::string name;  // empty = disabled
  std::vector<std::pair<std::string, std::string>> labels;
  bool enabled() const { return !name.empty(); }
};

// Parses `name{label=value,label2="value"}`; "" gives a disabled spec. Errors name the text.
absl::StatusOr<MetricSpec> ParseMetricSpec(std::string_view text);

// Where an engine reports each protocol metric. Block size and count come either from labels
// of an info metric (cache_info + the two label names) or from their own gauges.
struct EngineConfig {
  std::string name;
  std::vector<MetricSpec> queued;  // first spec present on the page wins (fallbacks)
  std::vector<MetricSpec> running;
  std::vector<MetricSpec> kv_usage;
  MetricSpec lora_info;
  MetricSpec cache_info;
  std::string cache_block_size_label;
  std::string cache_num_blocks_label;
  MetricSpec block_size;
  MetricSpec num_blocks;
};

// The built-in engines: "vllm", "sglang", "trtllm-serve", "triton-tensorrt-llm".
const std::vector<EngineConfig>& BuiltinEngines();
const EngineConfig* FindEngine(const std::vector<EngineConfig>& engines, std::string_view name);

struct ExtractResult {
  datastore::Metrics metrics;
  // Protocol metrics the page did not carry ("queued", "running", "kv_usage"); the fields keep
  // their zero values. The optional ones (LoRA, cache geometry) are never listed.
  std::vector<std::string> missing;
};

// Extracts the metrics of `engine` from one exposition page. Parse errors are InvalidArgument
// naming the line.
absl::StatusOr<ExtractResult> ExtractMetrics(const EngineConfig& engine, std::string_view page);

}  // namespace epp::datalayer

#endif  // EPP_DATALAYER_ENGINE_METRICS_H_
