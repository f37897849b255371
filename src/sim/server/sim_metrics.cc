#include "sim/server/sim_metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <string>

#include "absl/time/time.h"
#include "common/strings.h"

namespace epp::sim {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Python's repr() of a finite float: the shortest digits that round-trip, in positional notation
// when the decimal exponent is in [-4, 16) and with a ".0" for integral values, otherwise in
// exponent notation with a signed exponent of at least two digits ("1e-05", "1.5e+16").
std::string PythonFloatRepr(double v) {
  std::array<char, 64> buf;
  // Shortest round-trip digits in the form [-]d[.ddd]e(+|-)xx.
  auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific);
  std::string_view s(buf.data(), static_cast<size_t>(res.ptr - buf.data()));
  std::string out;
  if (!s.empty() && s.front() == '-') {
    out.push_back('-');
    s.remove_prefix(1);
  }
  const size_t e = s.find('e');
  std::string digits;
  for (char c : s.substr(0, e)) {
    if (c != '.') digits.push_back(c);
  }
  std::string_view exp_text = s.substr(e + 1);
  const bool exp_negative = !exp_text.empty() && exp_text.front() == '-';
  if (!exp_text.empty() && (exp_text.front() == '-' || exp_text.front() == '+')) {
    exp_text.remove_prefix(1);
  }
  int exp = 0;
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exp);
  if (exp_negative) exp = -exp;

  if (exp < -4 || exp >= 16) {
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    out.push_back('e');
    out.push_back(exp < 0 ? '-' : '+');
    const int abs_exp = exp < 0 ? -exp : exp;
    if (abs_exp < 10) out.push_back('0');
    StrAppend(&out, abs_exp);
    return out;
  }
  if (exp >= 0) {
    const size_t int_len = static_cast<size_t>(exp) + 1;
    if (digits.size() <= int_len) {
      out.append(digits);
      out.append(int_len - digits.size(), '0');
      out.append(".0");
    } else {
      out.append(digits, 0, int_len);
      out.push_back('.');
      out.append(digits, int_len);
    }
    return out;
  }
  out.append("0.");
  out.append(static_cast<size_t>(-exp - 1), '0');
  out.append(digits);
  return out;
}

// Label values and HELP text escaping of the text format.
void AppendEscaped(std::string* out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

struct Histogram {
  explicit Histogram(std::vector<double> b) : bounds(std::move(b)), buckets(bounds.size() + 1) {}

  // prometheus_client: the first bucket whose bound is >= v (bounds are inclusive).
  void Observe(double v) {
    const size_t i =
        static_cast<size_t>(std::lower_bound(bounds.begin(), bounds.end(), v) - bounds.begin());
    ++buckets[i];
    ++count;
    sum += v;
  }

  std::vector<double> bounds;     // finite upper bounds, ascending; +Inf is implied
  std::vector<uint64_t> buckets;  // per bucket (not cumulative); the last one is +Inf
  uint64_t count = 0;
  double sum = 0;
};

// vLLM's build_1_2_5_buckets: 1, 2, 5, 10, 20, 50, ... while <= max_value.
std::vector<double> Buckets125(int max_value) {
  std::vector<double> out;
  for (double scale = 1;; scale *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m * scale > max_value) return out;
      out.push_back(m * scale);
    }
  }
}

// vLLM V1 bucket bounds (model-servers.md §1.3).
std::vector<double> VllmTtftBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}
std::vector<double> VllmItlBuckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> VllmRequestLatencyBuckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}
std::vector<double> VllmIterationTokenBuckets() {
  return {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
}

// SGLang's TokenizerMetricsCollector defaults as we read them in its collector.py: TTFT 0.1 to
// 400 s, ITL 2 ms to 8 s, end-to-end 0.1 to 2400 s.
std::vector<double> SglangTtftBuckets() {
  return {0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400};
}
std::vector<double> SglangItlBuckets() {
  return {0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060,
          0.080, 0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000};
}
std::vector<double> SglangE2eBuckets() {
  return {0.1, 0.2, 0.4, 0.6, 0.8, 1,   2,   4,   6,    8,    10,
          20,  40,  60,  80,  100, 200, 400, 600, 1200, 1800, 2400};
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

// The engine leaves first_scheduled at its default (the Unix epoch) until the request is first
// scheduled; a request with output was certainly scheduled.
bool WasScheduled(const TokenEvent& e) {
  return e.output_tokens > 0 || e.first_scheduled > absl::UnixEpoch();
}

// Writes one page in prometheus_client's text format. Two sample layouts exist:
// single-process (histogram buckets, _count, _sum; a <name>_created gauge family after every
// counter and histogram) and multiprocess (_sum, buckets, _count; no _created), which is what
// servers running prometheus_client with PROMETHEUS_MULTIPROC_DIR print (SGLang).
class PageWriter {
 public:
  PageWriter(bool multiprocess, double created_unix)
      : multiprocess_(multiprocess), created_(created_unix) {}

  void Gauge(std::string_view name, std::string_view help,
             const std::vector<std::pair<Labels, double>>& series) {
    Header(name, help, "gauge");
    for (const auto& [labels, value] : series) Sample(name, labels, value);
  }
  void Gauge(std::string_view name, std::string_view help, const Labels& labels, double value) {
    Gauge(name, help, {{labels, value}});
  }

  // `base` is the counter's name without "_total" (prometheus_client appends it).
  void Counter(std::string_view base, std::string_view help,
               const std::vector<std::pair<Labels, double>>& series) {
    const std::string total = StrCat(base, "_total");
    Header(total, help, "counter");
    for (const auto& [labels, value] : series) Sample(total, labels, value);
    if (multiprocess_) return;
    const std::string created = StrCat(base, "_created");
    Header(created, help, "gauge");
    for (const auto& [labels, value] : series) Sample(created, labels, created_);
  }
  void Counter(std::string_view base, std::string_view help, const Labels& labels, double value) {
    Counter(base, help, {{labels, value}});
  }

  void Hist(std::string_view name, std::string_view help, const Labels& labels,
            const Histogram& h) {
    Header(name, help, "histogram");
    const std::string sum_name = StrCat(name, "_sum");
    const std::string count_name = StrCat(name, "_count");
    if (multiprocess_) Sample(sum_name, labels, h.sum);
    const std::string bucket_name = StrCat(name, "_bucket");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < h.buckets.size(); ++i) {
      cumulative += h.buckets[i];
      Labels with_le = labels;
      with_le.emplace_back("le", i < h.bounds.size() ? FormatPromFloat(h.bounds[i]) : "+Inf");
      Sample(bucket_name, with_le, static_cast<double>(cumulative));
    }
    Sample(count_name, labels, static_cast<double>(h.count));
    if (multiprocess_) return;
    Sample(sum_name, labels, h.sum);
    const std::string created = StrCat(name, "_created");
    Header(created, help, "gauge");
    Sample(created, labels, created_);
  }

  std::string Take() { return std::move(out_); }

 private:
  void Header(std::string_view name, std::string_view help, std::string_view type) {
    StrAppend(&out_, "# HELP ", name, " ");
    AppendEscaped(&out_, help, /*quote=*/false);
    StrAppend(&out_, "\n# TYPE ", name, " ", type, "\n");
  }

  // prometheus_client prints labels sorted by name.
  void Sample(std::string_view name, Labels labels, double value) {
    std::sort(labels.begin(), labels.end());
    out_.append(name);
    if (!labels.empty()) {
      out_.push_back('{');
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) out_.push_back(',');
        StrAppend(&out_, labels[i].first, "=\"");
        AppendEscaped(&out_, labels[i].second, /*quote=*/true);
        out_.push_back('"');
      }
      out_.push_back('}');
    }
    StrAppend(&out_, " ", FormatPromFloat(value), "\n");
  }

  const bool multiprocess_;
  const double created_;
  std::string out_;
};

Labels With(Labels base, std::string key, std::string value) {
  base.emplace_back(std::move(key), std::move(value));
  return base;
}

double D(uint64_t v) { return static_cast<double>(v); }

}  // namespace

std::string FormatPromFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::string s = PythonFloatRepr(v);
  // prometheus_client's floatToGoString: Go switches to exponents sooner than Python, so a
  // positive value with more than six digits before the dot becomes d.ddd "e+0" (dot - 1), with
  // trailing zeros and dot stripped from the mantissa. The "e+0" prefix is literal, so 1e15
  // prints as "1e+015", as the Python library does.
  const size_t dot = s.find('.');
  if (v > 0 && dot != std::string::npos && dot > 6) {
    std::string mantissa = StrCat(s.substr(0, 1), ".", s.substr(1, dot - 1), s.substr(dot + 1));
    while (!mantissa.empty() && (mantissa.back() == '0' || mantissa.back() == '.')) {
      mantissa.pop_back();
    }
    return StrCat(mantissa, "e+0", dot - 1);
  }
  return s;
}

bool ParseMetricsDialect(std::string_view s, MetricsDialect* out) {
  if (s == "vllm") {
    *out = MetricsDialect::kVllm;
  } else if (s == "sglang") {
    *out = MetricsDialect::kSglang;
  } else if (s == "trtllm-serve") {
    *out = MetricsDialect::kTrtllmServe;
  } else {
    return false;
  }
  return true;
}

struct SimMetrics::State {
  State(MetricsInfo i, MetricsDialect d)
      : info(std::move(i)),
        dialect(d),
        iteration_tokens(VllmIterationTokenBuckets()),
        ttft(d == MetricsDialect::kSglang ? SglangTtftBuckets() : VllmTtftBuckets()),
        itl(d == MetricsDialect::kSglang ? SglangItlBuckets() : VllmItlBuckets()),
        tpot(VllmItlBuckets()),
        e2e(d == MetricsDialect::kSglang ? SglangE2eBuckets() : VllmRequestLatencyBuckets()),
        queue(VllmRequestLatencyBuckets()),
        inference(VllmRequestLatencyBuckets()),
        prefill(VllmRequestLatencyBuckets()),
        decode(VllmRequestLatencyBuckets()),
        prompt_tokens(Buckets125(info.max_model_len)),
        generation_tokens(Buckets125(info.max_model_len)),
        max_generation_tokens(Buckets125(info.max_model_len)),
        params_max_tokens(Buckets125(info.max_model_len)),
        params_n({1, 2, 5, 10, 20}) {
    if (info.enable_lora) StampLora({}, {}, info.created_unix);
  }

  void StampLora(const std::vector<std::string>& running, const std::vector<std::string>& waiting,
                 double now_unix) {
    std::string r = StrJoin(running, ",");
    std::string w = StrJoin(waiting, ",");
    // Adapter names contain no NUL, so this key is unambiguous.
    std::string key = StrCat(r, std::string_view("\0", 1), w);
    auto [it, inserted] = lora_index.try_emplace(std::move(key), lora.size());
    if (inserted) {
      lora.push_back({std::move(r), std::move(w), now_unix});
    } else {
      lora[it->second].stamp = now_unix;
    }
  }

  void RecordFinish(const TokenEvent& e, absl::Time finish) {
    switch (e.finish) {
      case FinishReason::kStop:
        ++success_stop;
        break;
      case FinishReason::kLength:
        ++success_length;
        break;
      case FinishReason::kAbort:
        ++success_abort;
        break;
      case FinishReason::kNone:
        break;
    }
    // vLLM measures inference and decode time to the last token, which for an abort is the
    // token of an earlier step (or none).
    absl::Time last_token = finish;
    if (e.new_tokens == 0) {
      auto it = last_token_time.find(e.id);
      if (it != last_token_time.end()) last_token = it->second;
    }
    last_token_time.erase(e.id);

    e2e.Observe(Seconds(finish - e.arrival));
    if (WasScheduled(e)) {
      queue.Observe(Seconds(e.first_scheduled - e.queued));
      inference.Observe(Seconds(last_token - e.first_scheduled));
    }
    if (e.output_tokens > 0) {
      prefill.Observe(Seconds(e.first_token_time - e.first_scheduled));
      decode.Observe(Seconds(last_token - e.first_token_time));
      if (e.output_tokens >= 2) {
        tpot.Observe(Seconds(last_token - e.first_token_time) / (e.output_tokens - 1));
      }
    }
    prompt_tokens.Observe(e.prompt_tokens);
    generation_tokens.Observe(e.output_tokens);
    max_generation_tokens.Observe(e.output_tokens);  // n = 1: the only sequence's count
  }

  uint64_t finished() const { return success_stop + success_length + success_abort; }

  std::string RenderVllm(const EngineStats& stats) const;
  std::string RenderSglang(const EngineStats& stats) const;
  std::string RenderTrtllm(const EngineStats& stats) const;

  const MetricsInfo info;
  const MetricsDialect dialect;

  Histogram iteration_tokens;
  Histogram ttft;
  Histogram itl;
  Histogram tpot;
  Histogram e2e;
  Histogram queue;
  Histogram inference;
  Histogram prefill;
  Histogram decode;
  Histogram prompt_tokens;
  Histogram generation_tokens;
  Histogram max_generation_tokens;
  Histogram params_max_tokens;
  Histogram params_n;
  uint64_t success_stop = 0;
  uint64_t success_length = 0;
  uint64_t success_abort = 0;

  // Time of each live request's latest token, for inter-token latency.
  absl::flat_hash_map<uint64_t, absl::Time> last_token_time;

  // Every lora_requests_info label combination ever set, in first-seen order (the order
  // prometheus_client keeps its children in), with its latest stamp.
  struct LoraSeries {
    std::string running;
    std::string waiting;
    double stamp;
  };
  std::vector<LoraSeries> lora;
  absl::flat_hash_map<std::string, size_t> lora_index;
};

std::string SimMetrics::State::RenderVllm(const EngineStats& stats) const {
  PageWriter w(/*multiprocess=*/false, info.created_unix);
  const Labels base = {{"engine", "0"}, {"model_name", info.model_name}};
  const int deferred = std::max(stats.waiting - stats.waiting_for_capacity, 0);
  const uint64_t computed = stats.prompt_tokens > stats.prompt_tokens_cached
                                ? stats.prompt_tokens - stats.prompt_tokens_cached
                                : 0;

  w.Gauge("vllm:num_requests_running", "Number of requests in model execution batches.", base,
          stats.running);
  w.Gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", base,
          stats.waiting);
  w.Gauge("vllm:num_requests_waiting_by_reason",
          "Number of requests waiting to be processed, by reason.",
          {{With(base, "reason", "capacity"), static_cast<double>(stats.waiting_for_capacity)},
           {With(base, "reason", "deferred"), static_cast<double>(deferred)}});
  w.Gauge("vllm:engine_sleep_state",
          "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is "
          "awake; weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.",
          {{With(base, "sleep_state", "awake"), 1.0},
           {With(base, "sleep_state", "weights_offloaded"), 0.0},
           {With(base, "sleep_state", "discard_all"), 0.0}});
  w.Gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", base,
          stats.kv_usage);

  w.Counter("vllm:prefix_cache_queries",
            "Prefix cache queries, in terms of number of queried tokens.", base,
            D(stats.prefix_queries));
  w.Counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.",
            base, D(stats.prefix_hits));
  w.Counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.", base,
            D(stats.preemptions));
  w.Counter("vllm:prompt_tokens", "Number of prefill tokens processed.", base,
            D(stats.prompt_tokens));
  w.Counter("vllm:prompt_tokens_by_source", "Number of prompt tokens by source.",
            {{With(base, "source", "local_compute"), D(computed)},
             {With(base, "source", "local_cache_hit"), D(stats.prompt_tokens_cached)},
             {With(base, "source", "external_kv_transfer"), 0.0}});
  w.Counter("vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external).", base,
            D(stats.prompt_tokens_cached));
  w.Counter("vllm:generation_tokens", "Number of generation tokens processed.", base,
            D(stats.generation_tokens));
  w.Counter("vllm:request_success", "Count of successfully processed requests.",
            {{With(base, "finished_reason", "stop"), D(success_stop)},
             {With(base, "finished_reason", "length"), D(success_length)},
             {With(base, "finished_reason", "abort"), D(success_abort)}});

  w.Hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", base, prompt_tokens);
  w.Hist("vllm:request_generation_tokens", "Number of generation tokens processed.", base,
         generation_tokens);
  w.Hist("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", base,
         iteration_tokens);
  w.Hist("vllm:request_max_num_generation_tokens",
         "Histogram of maximum number of requested generation tokens.", base,
         max_generation_tokens);
  w.Hist("vllm:request_params_n", "Histogram of the n request parameter.", base, params_n);
  w.Hist("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", base,
         params_max_tokens);
  w.Hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", base,
         ttft);
  w.Hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", base,
         itl);
  w.Hist("vllm:request_time_per_output_token_seconds",
         "Histogram of time_per_output_token_seconds per request.", base, tpot);
  w.Hist("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", base,
         e2e);
  w.Hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
         base, queue);
  w.Hist("vllm:request_inference_time_seconds",
         "Histogram of time spent in RUNNING phase for request.", base, inference);
  w.Hist("vllm:request_prefill_time_seconds",
         "Histogram of time spent in PREFILL phase for request.", base, prefill);
  w.Hist("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.",
         base, decode);

  if (info.enable_lora) {
    std::vector<std::pair<Labels, double>> series;
    for (const auto& s : lora) {
      series.push_back({{{"max_lora", StrCat(info.max_loras)},
                         {"running_lora_adapters", s.running},
                         {"waiting_lora_adapters", s.waiting}},
                        s.stamp});
    }
    w.Gauge("vllm:lora_requests_info", "Running stats on lora requests.", series);
  }
  w.Gauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
          {{"block_size", StrCat(info.block_size)},
           {"cache_dtype", "auto"},
           {"enable_prefix_caching", info.enable_prefix_caching ? "True" : "False"},
           {"engine", "0"},
           // Python's str() of the float, without the exponent switch of sample values.
           {"gpu_memory_utilization", PythonFloatRepr(info.gpu_memory_utilization)},
           {"num_gpu_blocks", StrCat(info.num_gpu_blocks)},
           {"prefix_caching_hash_algo", "sha256"},
           {"sliding_window", "None"}},
          1.0);
  return w.Take();
}

// SGLang runs prometheus_client in multiprocess mode, so its page has no _created series and
// lists counter files, then gauges, then histograms (_sum first). Scheduler gauges carry the
// scheduler's labels; the tokenizer's counters and histograms carry only model_name.
std::string SimMetrics::State::RenderSglang(const EngineStats& stats) const {
  PageWriter w(/*multiprocess=*/true, info.created_unix);
  const Labels tokenizer = {{"model_name", info.model_name}};
  const Labels scheduler = {{"engine_type", "unified"},
                            {"model_name", info.model_name},
                            {"moe_ep_rank", "0"},
                            {"pp_rank", "0"},
                            {"tp_rank", "0"}};
  const int num_pages = std::max(info.num_gpu_blocks - 1, 0);
  const double max_total_tokens = static_cast<double>(num_pages) * info.block_size;
  const double hit_rate =
      stats.prefix_queries > 0 ? D(stats.prefix_hits) / D(stats.prefix_queries) : 0.0;

  w.Counter("sglang:prompt_tokens", "Number of prefill tokens processed.", tokenizer,
            D(stats.prompt_tokens));
  w.Counter("sglang:generation_tokens", "Number of generation tokens processed.", tokenizer,
            D(stats.generation_tokens));
  w.Counter("sglang:cached_tokens", "Number of cached prompt tokens.", tokenizer,
            D(stats.prompt_tokens_cached));
  w.Counter("sglang:num_requests", "Number of requests processed.", tokenizer, D(finished()));
  w.Counter("sglang:num_aborted_requests", "Number of requests aborted.", tokenizer,
            D(success_abort));

  w.Gauge("sglang:num_running_reqs", "The number of running requests.", scheduler, stats.running);
  w.Gauge("sglang:num_used_tokens", "The number of used tokens.", scheduler,
          std::round(stats.kv_usage * max_total_tokens));
  w.Gauge("sglang:token_usage", "The token usage.", scheduler, stats.kv_usage);
  w.Gauge("sglang:num_queue_reqs", "The number of requests in the waiting queue.", scheduler,
          stats.waiting);
  w.Gauge("sglang:cache_hit_rate", "The prefix cache hit rate.", scheduler, hit_rate);
  w.Gauge("sglang:max_total_num_tokens", "Maximum total number of tokens in the KV cache pool.",
          scheduler, max_total_tokens);
  w.Gauge("sglang:cache_config_info", "Information of the KV cache configuration.",
          {{"num_pages", StrCat(num_pages)}, {"page_size", StrCat(info.block_size)}}, 1.0);

  w.Hist("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
         tokenizer, ttft);
  w.Hist("sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
         tokenizer, itl);
  w.Hist("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds",
         tokenizer, e2e);
  return w.Take();
}

// trtllm-serve's latency histograms follow vLLM's metric module, so they use vLLM's buckets
// (our guess; the reference does not list them).
std::string SimMetrics::State::RenderTrtllm(const EngineStats& stats) const {
  PageWriter w(/*multiprocess=*/false, info.created_unix);
  const Labels base = {{"model_name", info.model_name}};
  w.Gauge("trtllm_num_requests_waiting", "Number of requests waiting to be processed.", base,
          stats.waiting);
  w.Gauge("trtllm_num_requests_running", "Number of requests currently running.", base,
          stats.running);
  w.Gauge("trtllm_kv_cache_utilization", "Fraction of KV cache blocks in use.", base,
          stats.kv_usage);
  w.Gauge("trtllm_kv_cache_tokens_per_block", "Number of tokens per KV cache block.", base,
          info.block_size);
  w.Gauge("trtllm_kv_cache_max_blocks", "Maximum number of KV cache blocks.", base,
          std::max(info.num_gpu_blocks - 1, 0));
  w.Hist("trtllm_time_to_first_token_seconds", "Histogram of time to first token in seconds.", base,
         ttft);
  w.Hist("trtllm_e2e_request_latency_seconds",
         "Histogram of end to end request latency in seconds.", base, e2e);
  return w.Take();
}

SimMetrics::SimMetrics(MetricsInfo info, MetricsDialect dialect)
    : state_(std::make_unique<State>(std::move(info), dialect)) {}

SimMetrics::~SimMetrics() = default;

void SimMetrics::OnRequest(int max_tokens, int n) {
  state_->params_max_tokens.Observe(max_tokens);
  state_->params_n.Observe(n);
}

void SimMetrics::OnStep(const StepResult& step, const EngineStats& after, double now_unix) {
  State& s = *state_;
  s.iteration_tokens.Observe(step.scheduled_tokens);
  for (const TokenEvent& e : step.events) {
    if (e.new_tokens > 0) {
      if (e.first_token) {
        s.ttft.Observe(Seconds(e.first_token_time - e.arrival));
      } else if (auto it = s.last_token_time.find(e.id); it != s.last_token_time.end()) {
        s.itl.Observe(Seconds(step.end - it->second));
      }
      s.last_token_time[e.id] = step.end;
    }
    if (e.finish != FinishReason::kNone) s.RecordFinish(e, step.end);
  }
  if (s.info.enable_lora) s.StampLora(after.running_loras, after.waiting_loras, now_unix);
}

void SimMetrics::OnFinishedOutsideStep(const TokenEvent& event) {
  // No step end to measure latencies against: only the outcome is counted.
  State& s = *state_;
  switch (event.finish) {
    case FinishReason::kStop:
      ++s.success_stop;
      break;
    case FinishReason::kLength:
      ++s.success_length;
      break;
    case FinishReason::kAbort:
      ++s.success_abort;
      break;
    case FinishReason::kNone:  // not finished: nothing to count
      break;
  }
  s.last_token_time.erase(event.id);
}

std::string SimMetrics::Render(const EngineStats& stats) const {
  switch (state_->dialect) {
    case MetricsDialect::kSglang:
      return state_->RenderSglang(stats);
    case MetricsDialect::kTrtllmServe:
      return state_->RenderTrtllm(stats);
    case MetricsDialect::kVllm:
      break;
  }
  return state_->RenderVllm(stats);
}

}  // namespace epp::sim
