#include "datalayer/engine_metrics.h"

#include <charconv>
#include <cmath>
#include <optional>

#include "common/strings.h"
#include "datalayer/prometheus_text.h"

namespace epp::datalayer {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == ':';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

MetricSpec Spec(std::string name, std::vector<std::pair<std::string, std::string>> labels = {}) {
  return MetricSpec{std::move(name), std::move(labels)};
}

bool Matches(const MetricSpec& spec, const Sample& s) {
  for (const auto& [k, v] : spec.labels) {
    const std::string* got = s.Label(k);
    if (got == nullptr || *got != v) return false;
  }
  return true;
}

// The chosen series of one spec: newest timestamp, else the last printed.
struct Best {
  bool found = false;
  double value = 0;
  std::optional<int64_t> ts;
  std::vector<std::pair<std::string, std::string>> labels;  // kept only when asked for

  // Newest timestamp wins; without timestamps, the last printed.
  void OfferNewest(const Sample& s, bool keep_labels) {
    if (found && ts && (!s.timestamp_ms || *s.timestamp_ms < *ts)) return;
    Take(s, keep_labels);
  }
  // The largest value wins (the LoRA info gauge's value is its update time).
  void OfferLargest(const Sample& s, bool keep_labels) {
    if (found && !(s.value > value)) return;
    Take(s, keep_labels);
  }
  void Take(const Sample& s, bool keep_labels) {
    found = true;
    value = s.value;
    ts = s.timestamp_ms;
    if (keep_labels) {
      labels.clear();
      for (const auto& [k, v] : s.labels) labels.emplace_back(std::string(k), v);
    }
  }
  const std::string* Label(std::string_view name) const {
    for (const auto& [k, v] : labels) {
      if (k == name) return &v;
    }
    return nullptr;
  }
};

int64_t ToCount(double v) {
  if (!std::isfinite(v) || v < 0) return 0;
  return static_cast<int64_t>(std::llround(v));
}

int64_t LabelInt(const std::string* s) {
  if (s == nullptr) return 0;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (ec != std::errc() || ptr != s->data() + s->size() || v < 0) return 0;
  return v;
}

void SplitAdapters(const std::string* list, std::map<std::string, int>& out) {
  if (list == nullptr) return;
  for (std::string_view part : Split(*list, ',')) {
    std::string_view name = Trim(part);
    if (!name.empty()) out[std::string(name)] = 0;
  }
}

}  // namespace

absl::StatusOr<MetricSpec> ParseMetricSpec(std::string_view text) {
  text = Trim(text);
  MetricSpec spec;
  if (text.empty()) return spec;
  size_t i = 0;
  while (i < text.size() && IsNameChar(text[i])) ++i;
  if (i == 0) return absl::InvalidArgumentError(StrCat("metric spec \"", text, "\": no name"));
  spec.name = std::string(text.substr(0, i));
  std::string_view rest = Trim(text.substr(i));
  if (rest.empty()) return spec;
  if (rest.front() != '{' || rest.back() != '}') {
    return absl::InvalidArgumentError(
        StrCat("metric spec \"", text, "\": labels must be written {label=value,...}"));
  }
  rest = rest.substr(1, rest.size() - 2);
  for (std::string_view part : Split(rest, ',')) {
    if (Trim(part).empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return absl::InvalidArgumentError(
          StrCat("metric spec \"", text, "\": label \"", Trim(part), "\" has no '='"));
    }
    std::string_view k = Trim(part.substr(0, eq));
    std::string_view v = Trim(part.substr(eq + 1));
    if (v.size() >= 2 &&
        ((v.front() == '"' && v.back() == '"') || (v.front() == '\'' && v.back() == '\''))) {
      v = v.substr(1, v.size() - 2);
    }
    if (k.empty()) {
      return absl::InvalidArgumentError(StrCat("metric spec \"", text, "\": empty label name"));
    }
    spec.labels.emplace_back(std::string(k), std::string(v));
  }
  return spec;
}

const std::vector<EngineConfig>& BuiltinEngines() {
  static const std::vector<EngineConfig>* engines = [] {
    auto* e = new std::vector<EngineConfig>();
    EngineConfig vllm;
    vllm.name = "vllm";
    vllm.queued = {Spec("vllm:num_requests_waiting")};
    vllm.running = {Spec("vllm:num_requests_running")};
    // vLLM renamed the KV gauge; older servers still print the old name.
    vllm.kv_usage = {Spec("vllm:kv_cache_usage_perc"), Spec("vllm:gpu_cache_usage_perc")};
    vllm.lora_info = Spec("vllm:lora_requests_info");
    vllm.cache_info = Spec("vllm:cache_config_info");
    vllm.cache_block_size_label = "block_size";
    vllm.cache_num_blocks_label = "num_gpu_blocks";
    e->push_back(vllm);

    EngineConfig sglang;
    sglang.name = "sglang";
    sglang.queued = {Spec("sglang:num_queue_reqs")};
    sglang.running = {Spec("sglang:num_running_reqs")};
    sglang.kv_usage = {Spec("sglang:token_usage")};
    sglang.cache_info = Spec("sglang:cache_config_info");
    sglang.cache_block_size_label = "page_size";
    sglang.cache_num_blocks_label = "num_pages";
    e->push_back(sglang);

    EngineConfig trtllm;
    trtllm.name = "trtllm-serve";
    trtllm.queued = {Spec("trtllm_num_requests_waiting")};
    trtllm.running = {Spec("trtllm_num_requests_running")};
    trtllm.kv_usage = {Spec("trtllm_kv_cache_utilization")};
    trtllm.block_size = Spec("trtllm_kv_cache_tokens_per_block");
    trtllm.num_blocks = Spec("trtllm_kv_cache_max_blocks");
    e->push_back(trtllm);

    EngineConfig triton;
    triton.name = "triton-tensorrt-llm";
    triton.queued = {Spec("nv_trt_llm_request_metrics", {{"request_type", "waiting"}})};
    triton.running = {Spec("nv_trt_llm_request_metrics", {{"request_type", "scheduled"}})};
    triton.kv_usage = {
        Spec("nv_trt_llm_kv_cache_block_metrics", {{"kv_cache_block_type", "fraction"}})};
    triton.block_size =
        Spec("nv_trt_llm_kv_cache_block_metrics", {{"kv_cache_block_type", "tokens_per"}});
    triton.num_blocks = Spec("nv_trt_llm_kv_cache_block_metrics", {{"kv_cache_block_type", "max"}});
    e->push_back(triton);
    return e;
  }();
  return *engines;
}

const EngineConfig* FindEngine(const std::vector<EngineConfig>& engines, std::string_view name) {
  for (const auto& e : engines) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

absl::StatusOr<ExtractResult> ExtractMetrics(const EngineConfig& engine, std::string_view page) {
  // Every spec gets a slot; the parser is asked only for the names the engine uses.
  struct Slot {
    const MetricSpec* spec;
    bool keep_labels;
    bool max_value;  // LoRA info: the largest value (a timestamp) wins
    Best best;
  };
  std::vector<Slot> slots;
  auto add = [&slots](const MetricSpec& s, bool keep_labels = false, bool max_value = false) {
    if (s.enabled()) slots.push_back({&s, keep_labels, max_value, {}});
  };
  for (const auto& s : engine.queued) add(s);
  for (const auto& s : engine.running) add(s);
  for (const auto& s : engine.kv_usage) add(s);
  add(engine.lora_info, true, true);
  add(engine.cache_info, true);
  add(engine.block_size);
  add(engine.num_blocks);
  std::vector<std::string_view> names;
  for (const auto& slot : slots) {
    bool dup = false;
    for (auto n : names) dup = dup || n == slot.spec->name;
    if (!dup) names.push_back(slot.spec->name);
  }
  absl::Status s = ParseExposition(page, names, [&slots](const Sample& sample) {
    for (auto& slot : slots) {
      if (slot.spec->name != sample.name || !Matches(*slot.spec, sample)) continue;
      if (slot.max_value) {
        slot.best.OfferLargest(sample, slot.keep_labels);
      } else {
        slot.best.OfferNewest(sample, slot.keep_labels);
      }
    }
  });
  if (!s.ok()) return s;

  auto find = [&slots](const MetricSpec& spec) -> const Best* {
    for (const auto& slot : slots) {
      if (slot.spec == &spec) return slot.best.found ? &slot.best : nullptr;
    }
    return nullptr;
  };
  auto first = [&find](const std::vector<MetricSpec>& specs) -> const Best* {
    for (const auto& spec : specs) {
      if (const Best* b = find(spec)) return b;
    }
    return nullptr;
  };

  // A protocol metric is missing when the engine asks for it (some spec enabled) and no spec
  // found it; a metric whose specs are all disabled is simply not read.
  auto wanted = [](const std::vector<MetricSpec>& specs) {
    for (const auto& s : specs) {
      if (s.enabled()) return true;
    }
    return false;
  };
  ExtractResult r;
  if (const Best* b = first(engine.queued)) {
    r.metrics.waiting_queue_size = ToCount(b->value);
  } else if (wanted(engine.queued)) {
    r.missing.push_back("queued");
  }
  if (const Best* b = first(engine.running)) {
    r.metrics.running_requests_size = ToCount(b->value);
  } else if (wanted(engine.running)) {
    r.missing.push_back("running");
  }
  if (const Best* b = first(engine.kv_usage)) {
    r.metrics.kv_cache_usage_percent = std::isfinite(b->value) ? b->value : 0;
  } else if (wanted(engine.kv_usage)) {
    r.missing.push_back("kv_usage");
  }
  if (const Best* b = find(engine.lora_info)) {
    SplitAdapters(b->Label("running_lora_adapters"), r.metrics.active_models);
    SplitAdapters(b->Label("waiting_lora_adapters"), r.metrics.waiting_models);
    r.metrics.max_active_models = LabelInt(b->Label("max_lora"));
  }
  if (const Best* b = find(engine.cache_info)) {
    r.metrics.cache_block_size = LabelInt(b->Label(engine.cache_block_size_label));
    r.metrics.cache_num_gpu_blocks = LabelInt(b->Label(engine.cache_num_blocks_label));
  }
  if (const Best* b = find(engine.block_size)) r.metrics.cache_block_size = ToCount(b->value);
  if (const Best* b = find(engine.num_blocks)) r.metrics.cache_num_gpu_blocks = ToCount(b->value);
  return r;
}

}  // namespace epp::datalayer
