// Parser throughput on a realistic vLLM V1 /metrics page (~15 KB: the families an endpoint
// picker reads plus the histograms, counters and HTTP/process families vLLM prints around them).
#include <benchmark/benchmark.h>

#include <string>

#include "datalayer/engine_metrics.h"

namespace epp::datalayer {
namespace {

std::string VllmPage() {
  const std::string labels = R"(engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct")";
  std::string p;
  auto gauge = [&](const std::string& name, const std::string& value) {
    p += "# HELP " + name + " A gauge.\n# TYPE " + name + " gauge\n";
    p += name + "{" + labels + "} " + value + "\n";
  };
  auto histogram = [&](const std::string& name, int buckets) {
    p += "# HELP " + name + " A histogram.\n# TYPE " + name + " histogram\n";
    double le = 0.001;
    for (int i = 0; i < buckets; ++i, le *= 2) {
      p += name + "_bucket{" + "engine=\"0\",le=\"" + std::to_string(le) +
           "\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} " + std::to_string(i * 7) + ".0\n";
    }
    p +=
        name +
        "_bucket{engine=\"0\",le=\"+Inf\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} 140.0\n";
    p += name + "_count{" + labels + "} 140.0\n" + name + "_sum{" + labels + "} 4.21\n";
    p += "# HELP " + name + "_created A histogram.\n# TYPE " + name + "_created gauge\n";
    p += name + "_created{" + labels + "} 1.7551780121e+09\n";
  };
  for (const char* n :
       {"python_gc_objects_collected_total", "process_virtual_memory_bytes",
        "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"}) {
    p += std::string("# TYPE ") + n + " gauge\n" + n + " 1.2345e+06\n";
  }
  gauge("vllm:num_requests_running", "8.0");
  gauge("vllm:num_requests_waiting", "2.0");
  gauge("vllm:kv_cache_usage_perc", "0.0412");
  for (const char* n :
       {"vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
        "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:num_preemptions_total"}) {
    gauge(n, "204800.0");
  }
  histogram("vllm:time_to_first_token_seconds", 22);
  histogram("vllm:inter_token_latency_seconds", 18);
  histogram("vllm:e2e_request_latency_seconds", 20);
  histogram("vllm:request_queue_time_seconds", 20);
  histogram("vllm:request_prompt_tokens", 12);
  p += "# HELP vllm:lora_requests_info Running stats on lora requests.\n"
       "# TYPE vllm:lora_requests_info gauge\n"
       "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"\","
       "waiting_lora_adapters=\"\"} 1.755178079975038e+09\n"
       "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"sql-lora,tweet-lora\","
       "waiting_lora_adapters=\"sql-lora\"} 1.755178093512941e+09\n";
  p += "# TYPE vllm:cache_config_info gauge\n"
       "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",enable_prefix_caching="
       "\"True\",engine=\"0\",gpu_memory_utilization=\"0.9\",num_gpu_blocks=\"27089\"} 1.0\n";
  for (int code : {200, 400, 404, 500}) {
    p += "http_requests_total{handler=\"/v1/chat/completions\",method=\"POST\",status=\"" +
         std::to_string(code) + "xx\"} 1234.0\n";
  }
  return p;
}

void BM_ExtractVllm(benchmark::State& state) {
  const std::string page = VllmPage();
  const EngineConfig& vllm = *FindEngine(BuiltinEngines(), "vllm");
  for (auto _ : state) {
    auto r = ExtractMetrics(vllm, page);
    if (!r.ok() || !r->missing.empty() || r->metrics.running_requests_size != 8) {
      state.SkipWithError("extraction failed");
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * page.size()));
  state.counters["page_bytes"] = static_cast<double>(page.size());
}
BENCHMARK(BM_ExtractVllm);

}  // namespace
}  // namespace epp::datalayer

BENCHMARK_MAIN();
