// libFuzzer target for the metrics page parser and the engine extraction: arbitrary bytes from
// a model server must give metrics or a clean InvalidArgument, never a crash, and extracted
// values must be sane (counts non-negative, KV usage finite).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "datalayer/engine_metrics.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace epp::datalayer;
  if (size == 0) return 0;
  const auto& engines = BuiltinEngines();
  const EngineConfig& engine = engines[data[0] % engines.size()];
  std::string_view page(reinterpret_cast<const char*>(data + 1), size - 1);
  auto r = ExtractMetrics(engine, page);
  if (!r.ok()) {
    if (r.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  const auto& m = r->metrics;
  if (m.waiting_queue_size < 0 || m.running_requests_size < 0 || m.cache_block_size < 0 ||
      m.cache_num_gpu_blocks < 0 || m.max_active_models < 0 ||
      !std::isfinite(m.kv_cache_usage_percent)) {
    std::abort();
  }
  for (const auto& [name, n] : m.active_models) {
    if (name.empty() || name.find(',') != std::string::npos) std::abort();
  }
  return 0;
}
