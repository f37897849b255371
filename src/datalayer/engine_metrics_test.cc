#include "datalayer/engine_metrics.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "datastore/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace epp::datalayer {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

using Labels = std::vector<std::pair<std::string, std::string>>;
using Adapters = std::map<std::string, int>;

std::string Msg(const absl::Status& s) {
  return std::string(s.message().data(), s.message().size());
}

// The built-in engine `name`; a test failure (and an empty engine) when it is not built in.
const EngineConfig& Engine(std::string_view name) {
  static const EngineConfig kNone;
  const EngineConfig* e = FindEngine(BuiltinEngines(), name);
  if (e == nullptr) {
    ADD_FAILURE() << "no built-in engine " << name;
    return kNone;
  }
  return *e;
}

// --- Pages, written the way each engine prints them. ---

// vLLM V1, single API server (model-servers.md §1.5).
constexpr char kVllmPage[] =
    R"(# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 8.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 2.0
# TYPE vllm:num_requests_waiting_by_reason gauge
vllm:num_requests_waiting_by_reason{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct",reason="capacity"} 2.0
vllm:num_requests_waiting_by_reason{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct",reason="deferred"} 0.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0412
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 204800.0
# HELP vllm:prefix_cache_queries_created Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_created gauge
vllm:prefix_cache_queries_created{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 1.7551780121e+09
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 122880.0
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="meta-llama/Llama-3.1-8B-Instruct"} 131.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="meta-llama/Llama-3.1-8B-Instruct"} 9.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.02",model_name="meta-llama/Llama-3.1-8B-Instruct"} 13.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.04",model_name="meta-llama/Llama-3.1-8B-Instruct"} 97.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 140.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 140.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"} 4.21
# HELP vllm:lora_requests_info Running stats on lora requests.
# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora="2",running_lora_adapters="",waiting_lora_adapters=""} 1.755178079975038e+09
vllm:lora_requests_info{max_lora="2",running_lora_adapters="sql-lora,tweet-lora",waiting_lora_adapters="sql-lora"} 1.755178093512941e+09
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="27089",prefix_caching_hash_algo="sha256",sliding_window="None"} 1.0
)";

// vLLM V0 era: only model_name, the old KV gauge name, no LoRA, no cache_config_info.
constexpr char kVllmV0Page[] =
    R"(# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="Qwen/Qwen2.5-0.5B-Instruct"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="Qwen/Qwen2.5-0.5B-Instruct"} 1.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="Qwen/Qwen2.5-0.5B-Instruct"} 0.5
)";

// vLLM with every label set printed in an unusual order.
constexpr char kVllmShuffledPage[] = R"(# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m",engine="0"} 37.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m",engine="0"} 11.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="m",engine="0"} 0.75
# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{waiting_lora_adapters="b",running_lora_adapters="a",max_lora="3"} 1.7e+09
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{num_gpu_blocks="1000",engine="0",block_size="32",cache_dtype="auto"} 1.0
)";

constexpr char kSglangPage[] = R"(# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{engine_type="unified",model_name="Qwen/Qwen2.5-7B-Instruct",moe_ep_rank="0",pp_rank="0",tp_rank="0"} 12.0
# HELP sglang:num_used_tokens The number of used tokens.
# TYPE sglang:num_used_tokens gauge
sglang:num_used_tokens{engine_type="unified",model_name="Qwen/Qwen2.5-7B-Instruct",moe_ep_rank="0",pp_rank="0",tp_rank="0"} 53650.0
# HELP sglang:token_usage The token usage.
# TYPE sglang:token_usage gauge
sglang:token_usage{engine_type="unified",model_name="Qwen/Qwen2.5-7B-Instruct",moe_ep_rank="0",pp_rank="0",tp_rank="0"} 0.37
# HELP sglang:num_queue_reqs The number of requests in the waiting queue.
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{engine_type="unified",model_name="Qwen/Qwen2.5-7B-Instruct",moe_ep_rank="0",pp_rank="0",tp_rank="0"} 5.0
# HELP sglang:num_grammar_queue_reqs The number of requests in the grammar waiting queue.
# TYPE sglang:num_grammar_queue_reqs gauge
sglang:num_grammar_queue_reqs{engine_type="unified",model_name="Qwen/Qwen2.5-7B-Instruct",moe_ep_rank="0",pp_rank="0",tp_rank="0"} 0.0
# HELP sglang:cache_hit_rate The prefix cache hit rate.
# TYPE sglang:cache_hit_rate gauge
sglang:cache_hit_rate{engine_type="unified",model_name="Qwen/Qwen2.5-7B-Instruct",moe_ep_rank="0",pp_rank="0",tp_rank="0"} 0.42
# HELP sglang:cache_config_info Cache configuration.
# TYPE sglang:cache_config_info gauge
sglang:cache_config_info{model_name="Qwen/Qwen2.5-7B-Instruct",num_pages="145000",page_size="1"} 1.0
# HELP sglang:prompt_tokens_total Number of prefill tokens processed.
# TYPE sglang:prompt_tokens_total counter
sglang:prompt_tokens_total{model_name="Qwen/Qwen2.5-7B-Instruct"} 918273.0
)";

// SGLang before cache_config_info existed, labels in an unusual order.
constexpr char kSglangOldShuffledPage[] = R"(# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{tp_rank="0",model_name="m",engine_type="unified"} 4.0
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{tp_rank="0",model_name="m",engine_type="unified"} 9.0
# TYPE sglang:token_usage gauge
sglang:token_usage{tp_rank="0",model_name="m",engine_type="unified"} 0.91
)";

constexpr char kTrtllmServePage[] =
    R"(# HELP trtllm_num_requests_running Number of requests currently running.
# TYPE trtllm_num_requests_running gauge
trtllm_num_requests_running{engine_type="trtllm",model_name="meta-llama/Llama-3.1-8B-Instruct"} 6.0
# HELP trtllm_num_requests_waiting Number of requests waiting.
# TYPE trtllm_num_requests_waiting gauge
trtllm_num_requests_waiting{engine_type="trtllm",model_name="meta-llama/Llama-3.1-8B-Instruct"} 4.0
# HELP trtllm_kv_cache_utilization KV cache utilization.
# TYPE trtllm_kv_cache_utilization gauge
trtllm_kv_cache_utilization{engine_type="trtllm",model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.5
# HELP trtllm_kv_cache_tokens_per_block Tokens per KV cache block.
# TYPE trtllm_kv_cache_tokens_per_block gauge
trtllm_kv_cache_tokens_per_block{engine_type="trtllm",model_name="meta-llama/Llama-3.1-8B-Instruct"} 32.0
# HELP trtllm_kv_cache_max_blocks Maximum number of KV cache blocks.
# TYPE trtllm_kv_cache_max_blocks gauge
trtllm_kv_cache_max_blocks{engine_type="trtllm",model_name="meta-llama/Llama-3.1-8B-Instruct"} 4096.0
# HELP trtllm_time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE trtllm_time_to_first_token_seconds histogram
trtllm_time_to_first_token_seconds_bucket{engine_type="trtllm",le="0.1",model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
trtllm_time_to_first_token_seconds_bucket{engine_type="trtllm",le="+Inf",model_name="meta-llama/Llama-3.1-8B-Instruct"} 7.0
)";

// Triton + TensorRT-LLM backend (prometheus-cpp prints integers without ".0").
constexpr char kTritonPage[] =
    R"(# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting execution per-model.
# TYPE nv_inference_pending_request_count gauge
nv_inference_pending_request_count{model="tensorrt_llm",version="1"} 0
# HELP nv_trt_llm_request_metrics TRT LLM request metrics
# TYPE nv_trt_llm_request_metrics gauge
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="context",version="1"} 1
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="scheduled",version="1"} 5
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="max",version="1"} 512
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="active",version="1"} 8
nv_trt_llm_request_metrics{model="tensorrt_llm",request_type="waiting",version="1"} 3
# HELP nv_trt_llm_runtime_memory_metrics TRT LLM runtime memory metrics
# TYPE nv_trt_llm_runtime_memory_metrics gauge
nv_trt_llm_runtime_memory_metrics{memory_type="pinned",model="tensorrt_llm",version="1"} 0
nv_trt_llm_runtime_memory_metrics{memory_type="gpu",model="tensorrt_llm",version="1"} 1610236
# HELP nv_trt_llm_kv_cache_block_metrics TRT LLM KV cache block metrics
# TYPE nv_trt_llm_kv_cache_block_metrics gauge
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="tokens_per",model="tensorrt_llm",version="1"} 64
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="used",model="tensorrt_llm",version="1"} 1
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="free",model="tensorrt_llm",version="1"} 8191
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="tensorrt_llm",version="1"} 8192
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="reused",model="tensorrt_llm",version="1"} 0
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="tensorrt_llm",version="1"} 0.000122
# HELP nv_trt_llm_general_metrics General TRT LLM metrics
# TYPE nv_trt_llm_general_metrics gauge
nv_trt_llm_general_metrics{general_type="iteration_counter",model="tensorrt_llm",version="1"} 0
nv_trt_llm_general_metrics{general_type="timestamp",model="tensorrt_llm",version="1"} 1700074049
)";

// An older Triton backend: no "waiting" request type, no "fraction" block type; labels in an
// unusual order.
constexpr char kTritonOldShuffledPage[] = R"(# TYPE nv_trt_llm_request_metrics gauge
nv_trt_llm_request_metrics{version="1",request_type="max",model="tensorrt_llm"} 512
nv_trt_llm_request_metrics{version="1",request_type="scheduled",model="tensorrt_llm"} 7
nv_trt_llm_request_metrics{version="1",request_type="active",model="tensorrt_llm"} 9
# TYPE nv_trt_llm_kv_cache_block_metrics gauge
nv_trt_llm_kv_cache_block_metrics{version="1",model="tensorrt_llm",kv_cache_block_type="max"} 1024
nv_trt_llm_kv_cache_block_metrics{version="1",model="tensorrt_llm",kv_cache_block_type="tokens_per"} 128
nv_trt_llm_kv_cache_block_metrics{version="1",model="tensorrt_llm",kv_cache_block_type="used"} 3
)";

// --- ParseMetricSpec ---

TEST(ParseMetricSpecTest, Valid) {
  struct Case {
    const char* text;
    std::string name;
    Labels labels;
  } cases[] = {
      {"", "", {}},
      {"   ", "", {}},
      {"name", "name", {}},
      {"  vllm:num_requests_waiting  ", "vllm:num_requests_waiting", {}},
      {"name{a=b}", "name", {{"a", "b"}}},
      {R"(name{a="b", c='d'})", "name", {{"a", "b"}, {"c", "d"}}},
      {R"(name{ a = "b" , c = d })", "name", {{"a", "b"}, {"c", "d"}}},
      {"name {a=b}", "name", {{"a", "b"}}},
      {"name{a=b,}", "name", {{"a", "b"}}},
      {R"(name{a=""})", "name", {{"a", ""}}},
      {"nv_trt_llm_request_metrics{request_type=waiting}",
       "nv_trt_llm_request_metrics",
       {{"request_type", "waiting"}}},
      {R"(nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="tensorrt_llm"})",
       "nv_trt_llm_kv_cache_block_metrics",
       {{"kv_cache_block_type", "fraction"}, {"model", "tensorrt_llm"}}},
  };
  for (const auto& c : cases) {
    absl::StatusOr<MetricSpec> spec = ParseMetricSpec(c.text);
    ASSERT_TRUE(spec.ok()) << c.text << ": " << spec.status();
    EXPECT_EQ(spec->name, c.name) << c.text;
    EXPECT_EQ(spec->labels, c.labels) << c.text;
    EXPECT_EQ(spec->enabled(), !c.name.empty()) << c.text;
  }
}

TEST(ParseMetricSpecTest, Invalid) {
  for (const char* text : {
           "{a=b}",        // no name
           "{}",           // no name
           "-name",        // no name
           "\"name\"",     // no name
           "name{a=b",     // missing '}'
           "name a=b}",    // missing '{'
           "name}",        // missing '{'
           "name{a=b}x",   // text after the labels
           "name{a}",      // label without '='
           "name{a=b,c}",  // second label without '='
           "name{=b}",     // empty label name
           "name other",   // a second word
       }) {
    absl::StatusOr<MetricSpec> spec = ParseMetricSpec(text);
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(Msg(spec.status()), HasSubstr(text)) << text;
  }
}

// --- BuiltinEngines / FindEngine ---

TEST(BuiltinEnginesTest, Names) {
  std::vector<std::string> names;
  for (const auto& e : BuiltinEngines()) names.push_back(e.name);
  EXPECT_THAT(names, UnorderedElementsAre("vllm", "sglang", "trtllm-serve", "triton-tensorrt-llm"));
}

TEST(BuiltinEnginesTest, EveryEngineHasTheThreeProtocolMetrics) {
  for (const auto& e : BuiltinEngines()) {
    EXPECT_FALSE(e.queued.empty()) << e.name;
    EXPECT_FALSE(e.running.empty()) << e.name;
    EXPECT_FALSE(e.kv_usage.empty()) << e.name;
    for (const auto* specs : {&e.queued, &e.running, &e.kv_usage}) {
      for (const auto& spec : *specs) EXPECT_TRUE(spec.enabled()) << e.name;
    }
    // Only vLLM reports LoRA state.
    EXPECT_EQ(e.lora_info.enabled(), e.name == "vllm") << e.name;
  }
}

TEST(FindEngineTest, FindsByExactName) {
  const auto& engines = BuiltinEngines();
  for (const char* name : {"vllm", "sglang", "trtllm-serve", "triton-tensorrt-llm"}) {
    const EngineConfig* e = FindEngine(engines, name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->name, name);
  }
  for (const char* name : {"", "tgi", "vll", "vllm2", "triton", "trtllm"}) {
    EXPECT_EQ(FindEngine(engines, name), nullptr) << name;
  }
}

TEST(FindEngineTest, SearchesTheGivenList) {
  std::vector<EngineConfig> engines(2);
  engines[0].name = "a";
  engines[1].name = "vllm";
  EXPECT_EQ(FindEngine(engines, "a"), &engines[0]);
  EXPECT_EQ(FindEngine(engines, "vllm"), &engines[1]);
  EXPECT_EQ(FindEngine(engines, "sglang"), nullptr);
  EXPECT_EQ(FindEngine({}, "vllm"), nullptr);
}

// --- ExtractMetrics ---

struct PageCase {
  const char* what;
  const char* engine;
  std::string page;
  datastore::Metrics want;
  std::vector<std::string> missing;
};

datastore::Metrics M(int64_t waiting, int64_t running, double kv, int64_t block_size = 0,
                     int64_t num_blocks = 0) {
  datastore::Metrics m;
  m.waiting_queue_size = waiting;
  m.running_requests_size = running;
  m.kv_cache_usage_percent = kv;
  m.cache_block_size = block_size;
  m.cache_num_gpu_blocks = num_blocks;
  return m;
}

datastore::Metrics WithLora(datastore::Metrics m, Adapters active, Adapters waiting,
                            int64_t max_lora) {
  m.active_models = std::move(active);
  m.waiting_models = std::move(waiting);
  m.max_active_models = max_lora;
  return m;
}

void ExpectMetricsEq(const datastore::Metrics& got, const datastore::Metrics& want,
                     const std::string& what) {
  EXPECT_EQ(got.waiting_queue_size, want.waiting_queue_size) << what;
  EXPECT_EQ(got.running_requests_size, want.running_requests_size) << what;
  EXPECT_DOUBLE_EQ(got.kv_cache_usage_percent, want.kv_cache_usage_percent) << what;
  EXPECT_EQ(got.active_models, want.active_models) << what;
  EXPECT_EQ(got.waiting_models, want.waiting_models) << what;
  EXPECT_EQ(got.max_active_models, want.max_active_models) << what;
  EXPECT_EQ(got.cache_block_size, want.cache_block_size) << what;
  EXPECT_EQ(got.cache_num_gpu_blocks, want.cache_num_gpu_blocks) << what;
  EXPECT_EQ(got.update_time, want.update_time) << what;
}

void RunPageCases(const std::vector<PageCase>& cases) {
  for (const auto& c : cases) {
    absl::StatusOr<ExtractResult> r = ExtractMetrics(Engine(c.engine), c.page);
    ASSERT_TRUE(r.ok()) << c.what << ": " << r.status();
    ExpectMetricsEq(r->metrics, c.want, c.what);
    EXPECT_THAT(r->missing, UnorderedElementsAreArray(c.missing)) << c.what;
  }
}

TEST(ExtractMetricsTest, RealisticPages) {
  RunPageCases({
      {"vllm v1",
       "vllm",
       kVllmPage,
       WithLora(M(2, 8, 0.0412, 16, 27089), {{"sql-lora", 0}, {"tweet-lora", 0}}, {{"sql-lora", 0}},
                2),
       {}},
      {"vllm v0", "vllm", kVllmV0Page, M(1, 3, 0.5), {}},
      {"vllm shuffled labels",
       "vllm",
       kVllmShuffledPage,
       WithLora(M(11, 37, 0.75, 32, 1000), {{"a", 0}}, {{"b", 0}}, 3),
       {}},
      {"sglang", "sglang", kSglangPage, M(5, 12, 0.37, 1, 145000), {}},
      {"sglang old, shuffled labels", "sglang", kSglangOldShuffledPage, M(9, 4, 0.91), {}},
      {"trtllm-serve", "trtllm-serve", kTrtllmServePage, M(4, 6, 0.5, 32, 4096), {}},
      {"triton", "triton-tensorrt-llm", kTritonPage, M(3, 5, 0.000122, 64, 8192), {}},
      {"triton old, shuffled labels",
       "triton-tensorrt-llm",
       kTritonOldShuffledPage,
       M(0, 7, 0, 128, 1024),
       {"queued", "kv_usage"}},
  });
}

TEST(ExtractMetricsTest, MissingFamilies) {
  const std::string w = "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 4.0\n";
  const std::string r = "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 5.0\n";
  const std::string k = "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.25\n";
  const std::string lora =
      "vllm:lora_requests_info{max_lora=\"1\",running_lora_adapters=\"\","
      "waiting_lora_adapters=\"\"} 1.755178079975038e+09\n";
  RunPageCases({
      {"all present", "vllm", w + r + k, M(4, 5, 0.25), {}},
      {"no waiting", "vllm", r + k, M(0, 5, 0.25), {"queued"}},
      {"no running", "vllm", w + k, M(4, 0, 0.25), {"running"}},
      {"no kv", "vllm", w + r, M(4, 5, 0), {"kv_usage"}},
      {"only lora",
       "vllm",
       lora,
       WithLora(M(0, 0, 0), {}, {}, 1),
       {"queued", "running", "kv_usage"}},
      {"empty page", "vllm", "", M(0, 0, 0), {"queued", "running", "kv_usage"}},
      {"comments only",
       "vllm",
       "# HELP vllm:num_requests_waiting x\n# TYPE vllm:num_requests_waiting gauge\n",
       M(0, 0, 0),
       {"queued", "running", "kv_usage"}},
      {"empty sglang", "sglang", "", M(0, 0, 0), {"queued", "running", "kv_usage"}},
      {"empty trtllm-serve", "trtllm-serve", "\n", M(0, 0, 0), {"queued", "running", "kv_usage"}},
      {"empty triton", "triton-tensorrt-llm", "", M(0, 0, 0), {"queued", "running", "kv_usage"}},
      {"triton, other request types only",
       "triton-tensorrt-llm",
       "nv_trt_llm_request_metrics{model=\"tensorrt_llm\",request_type=\"active\",version=\"1\"} "
       "8\n"
       "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"used\",model=\"tensorrt_llm\","
       "version=\"1\"} 3\n",
       M(0, 0, 0),
       {"queued", "running", "kv_usage"}},
      // Optional metrics alone: present, never listed as missing.
      {"sglang cache info only",
       "sglang",
       "sglang:cache_config_info{num_pages=\"10\",page_size=\"16\"} 1.0\n",
       M(0, 0, 0, 16, 10),
       {"queued", "running", "kv_usage"}},
      {"trtllm geometry only",
       "trtllm-serve",
       "trtllm_kv_cache_tokens_per_block 64.0\ntrtllm_kv_cache_max_blocks 10.0\n",
       M(0, 0, 0, 64, 10),
       {"queued", "running", "kv_usage"}},
  });
}

TEST(ExtractMetricsTest, OptionalMetricsAreNeverMissing) {
  // Pages with the three protocol metrics but no LoRA or cache-geometry series.
  RunPageCases({
      {"vllm", "vllm", kVllmV0Page, M(1, 3, 0.5), {}},
      {"sglang", "sglang", kSglangOldShuffledPage, M(9, 4, 0.91), {}},
      {"trtllm-serve",
       "trtllm-serve",
       "trtllm_num_requests_waiting 1.0\ntrtllm_num_requests_running 2.0\n"
       "trtllm_kv_cache_utilization 0.125\n",
       M(1, 2, 0.125),
       {}},
      {"triton",
       "triton-tensorrt-llm",
       "nv_trt_llm_request_metrics{model=\"tensorrt_llm\",request_type=\"waiting\",version=\"1\"} "
       "1\n"
       "nv_trt_llm_request_metrics{model=\"tensorrt_llm\",request_type=\"scheduled\",version="
       "\"1\"} 2\n"
       "nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"fraction\",model=\"tensorrt_llm\","
       "version=\"1\"} 0.5\n",
       M(1, 2, 0.5),
       {}},
  });
}

TEST(ExtractMetricsTest, PageOfAnotherEngineIsAllMissing) {
  const std::pair<const char*, const char*> pages[] = {
      {"vllm", kVllmPage},
      {"vllm", kVllmV0Page},
      {"sglang", kSglangPage},
      {"trtllm-serve", kTrtllmServePage},
      {"triton-tensorrt-llm", kTritonPage},
  };
  for (const auto& engine : BuiltinEngines()) {
    for (const auto& [page_engine, page] : pages) {
      if (engine.name == page_engine) continue;
      absl::StatusOr<ExtractResult> r = ExtractMetrics(engine, page);
      ASSERT_TRUE(r.ok()) << engine.name << " on " << page_engine << ": " << r.status();
      EXPECT_THAT(r->missing, UnorderedElementsAre("queued", "running", "kv_usage"))
          << engine.name << " on " << page_engine;
      ExpectMetricsEq(r->metrics, datastore::Metrics{}, engine.name + " on " + page_engine);
    }
  }
}

TEST(ExtractMetricsTest, VllmKvFallback) {
  const std::string core =
      "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 1.0\n"
      "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 2.0\n";
  const std::string kv_new = "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.25\n";
  const std::string kv_old = "vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.75\n";
  RunPageCases({
      {"new name only", "vllm", core + kv_new, M(2, 1, 0.25), {}},
      {"old name only", "vllm", core + kv_old, M(2, 1, 0.75), {}},
      {"both, new first", "vllm", core + kv_new + kv_old, M(2, 1, 0.25), {}},
      {"both, old first", "vllm", core + kv_old + kv_new, M(2, 1, 0.25), {}},
      {"neither", "vllm", core, M(2, 1, 0), {"kv_usage"}},
      {"old name at zero",
       "vllm",
       core + "vllm:gpu_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.0\n",
       M(2, 1, 0),
       {}},
  });
}

TEST(ExtractMetricsTest, VllmLora) {
  const std::string core =
      "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 1.0\n"
      "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 2.0\n"
      "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n"
      "# HELP vllm:lora_requests_info Running stats on lora requests.\n"
      "# TYPE vllm:lora_requests_info gauge\n";
  auto info = [](const char* max_lora, const char* running, const char* waiting,
                 const char* value) {
    return std::string("vllm:lora_requests_info{max_lora=\"") + max_lora +
           "\",running_lora_adapters=\"" + running + "\",waiting_lora_adapters=\"" + waiting +
           "\"} " + value + "\n";
  };
  struct Case {
    const char* what;
    std::string lines;
    Adapters active;
    Adapters waiting;
    int64_t max_lora;
  } cases[] = {
      {"newest last",
       info("2", "", "", "1.755178079975038e+09") +
           info("2", "sql-lora,tweet-lora", "sql-lora", "1.755178093512941e+09"),
       {{"sql-lora", 0}, {"tweet-lora", 0}},
       {{"sql-lora", 0}},
       2},
      {"newest first",
       info("4", "b", "c", "1.755178093512941e+09") + info("4", "a", "", "1.755178079975038e+09"),
       {{"b", 0}},
       {{"c", 0}},
       4},
      {"newest in the middle",
       info("2", "x", "", "100.0") + info("3", "y", "z", "300.0") + info("2", "w", "", "200.0"),
       {{"y", 0}},
       {{"z", 0}},
       3},
      {"newest has empty lists",
       info("2", "sql-lora", "tweet-lora", "1.0e+09") + info("2", "", "", "2.0e+09"),
       {},
       {},
       2},
      {"spaces are trimmed",
       info("2", "sql-lora, tweet-lora", " a ,b , c", "1.0"),
       {{"sql-lora", 0}, {"tweet-lora", 0}},
       {{"a", 0}, {"b", 0}, {"c", 0}},
       2},
      {"empty items are dropped", info("1", ",sql-lora,,", " , ", "1.0"), {{"sql-lora", 0}}, {}, 1},
      {"empty lists", info("1", "", "", "1.755178079975038e+09"), {}, {}, 1},
      {"integer value", info("8", "a", "", "1755178079"), {{"a", 0}}, {}, 8},
      {"labels in another order",
       "vllm:lora_requests_info{waiting_lora_adapters=\"w1,w2\",max_lora=\"5\","
       "running_lora_adapters=\"r1\"} 1.0\n",
       {{"r1", 0}},
       {{"w1", 0}, {"w2", 0}},
       5},
      {"no series", "", {}, {}, 0},
  };
  for (const auto& c : cases) {
    absl::StatusOr<ExtractResult> r = ExtractMetrics(Engine("vllm"), core + c.lines);
    ASSERT_TRUE(r.ok()) << c.what << ": " << r.status();
    ExpectMetricsEq(r->metrics, WithLora(M(2, 1, 0.5), c.active, c.waiting, c.max_lora), c.what);
    EXPECT_THAT(r->missing, IsEmpty()) << c.what;
  }
}

TEST(ExtractMetricsTest, LoraPicksLargestValueNotNewestTimestamp) {
  const std::string page =
      "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"by-value\","
      "waiting_lora_adapters=\"\"} 2.0e+09 1000\n"
      "vllm:lora_requests_info{max_lora=\"3\",running_lora_adapters=\"by-timestamp\","
      "waiting_lora_adapters=\"\"} 1.0e+09 9000\n";
  absl::StatusOr<ExtractResult> r = ExtractMetrics(Engine("vllm"), page);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->metrics.active_models, (Adapters{{"by-value", 0}}));
  EXPECT_EQ(r->metrics.max_active_models, 2);
}

TEST(ExtractMetricsTest, VllmCacheConfig) {
  struct Case {
    const char* what;
    std::string line;
    int64_t block_size;
    int64_t num_blocks;
  } cases[] = {
      {"v1 labels",
       "vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\",enable_prefix_caching="
       "\"True\",engine=\"0\",gpu_memory_utilization=\"0.9\",num_gpu_blocks=\"27089\","
       "prefix_caching_hash_algo=\"sha256\",sliding_window=\"None\"} 1.0\n",
       16, 27089},
      {"other order",
       "vllm:cache_config_info{num_gpu_blocks=\"512\",block_size=\"64\",engine=\"0\"} 1.0\n", 64,
       512},
      {"absent", "", 0, 0},
  };
  const std::string core =
      "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 1.0\n"
      "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 2.0\n"
      "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.5\n";
  for (const auto& c : cases) {
    absl::StatusOr<ExtractResult> r = ExtractMetrics(Engine("vllm"), core + c.line);
    ASSERT_TRUE(r.ok()) << c.what << ": " << r.status();
    EXPECT_EQ(r->metrics.cache_block_size, c.block_size) << c.what;
    EXPECT_EQ(r->metrics.cache_num_gpu_blocks, c.num_blocks) << c.what;
    EXPECT_THAT(r->missing, IsEmpty()) << c.what;
  }
}

TEST(ExtractMetricsTest, NewestTimestampWins) {
  struct Case {
    const char* what;
    const char* engine;
    std::string page;
    int64_t waiting;
  } cases[] = {
      {"vllm, newest in the middle", "vllm",
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 5.0 1000\n"
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 7.0 3000\n"
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 9.0 2000\n",
       7},
      {"vllm, newest first", "vllm",
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 5.0 3000\n"
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 7.0 2000\n"
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 9.0 1000\n",
       5},
      {"vllm, newest last", "vllm",
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 5.0 1000\n"
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 7.0 2000\n"
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 9.0 3000\n",
       9},
      {"vllm, no timestamps: last printed", "vllm",
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 5.0\n"
       "vllm:num_requests_waiting{engine=\"1\",model_name=\"m\"} 7.0\n"
       "vllm:num_requests_waiting{engine=\"2\",model_name=\"m\"} 3.0\n",
       3},
      {"triton, other request types ignored", "triton-tensorrt-llm",
       "nv_trt_llm_request_metrics{model=\"a\",request_type=\"waiting\",version=\"1\"} 2 5000\n"
       "nv_trt_llm_request_metrics{model=\"b\",request_type=\"waiting\",version=\"1\"} 4 6000\n"
       "nv_trt_llm_request_metrics{model=\"b\",request_type=\"max\",version=\"1\"} 512 9000\n"
       "nv_trt_llm_request_metrics{model=\"c\",request_type=\"waiting\",version=\"1\"} 6 4000\n",
       4},
  };
  for (const auto& c : cases) {
    absl::StatusOr<ExtractResult> r = ExtractMetrics(Engine(c.engine), c.page);
    ASSERT_TRUE(r.ok()) << c.what << ": " << r.status();
    EXPECT_EQ(r->metrics.waiting_queue_size, c.waiting) << c.what;
  }
}

TEST(ExtractMetricsTest, CustomSpecsFilterByLabels) {
  EngineConfig engine;
  engine.name = "custom";
  for (auto [field, text] : std::vector<std::pair<std::vector<MetricSpec>*, const char*>>{
           {&engine.queued, "vllm:num_requests_waiting{model_name=\"b\"}"},
           {&engine.running, "vllm:num_requests_running{engine='1', model_name=b}"},
           {&engine.kv_usage, "vllm:kv_cache_usage_perc{model_name=\"nope\"}"},
           {&engine.kv_usage, "vllm:kv_cache_usage_perc{model_name=\"b\"}"},
       }) {
    absl::StatusOr<MetricSpec> spec = ParseMetricSpec(text);
    ASSERT_TRUE(spec.ok()) << spec.status();
    field->push_back(*spec);
  }
  const std::string page =
      "vllm:num_requests_waiting{engine=\"0\",model_name=\"a\"} 1.0\n"
      "vllm:num_requests_waiting{engine=\"0\",model_name=\"b\"} 2.0\n"
      "vllm:num_requests_waiting{engine=\"0\",model_name=\"c\"} 3.0\n"
      "vllm:num_requests_running{engine=\"0\",model_name=\"b\"} 4.0\n"
      "vllm:num_requests_running{engine=\"1\",model_name=\"b\"} 5.0\n"
      "vllm:num_requests_running{engine=\"2\",model_name=\"b\"} 6.0\n"
      "vllm:num_requests_running{engine=\"1\",model_name=\"c\"} 7.0\n"
      "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"a\"} 0.1\n"
      "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"b\"} 0.2\n"
      "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"c\"} 0.3\n";
  absl::StatusOr<ExtractResult> r = ExtractMetrics(engine, page);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectMetricsEq(r->metrics, M(2, 5, 0.2), "custom");
  EXPECT_THAT(r->missing, IsEmpty());

  // A label the series does not carry never matches.
  engine.queued = {*ParseMetricSpec("vllm:num_requests_waiting{reason=\"capacity\"}")};
  r = ExtractMetrics(engine, page);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->metrics.waiting_queue_size, 0);
  EXPECT_THAT(r->missing, UnorderedElementsAre("queued"));
}

TEST(ExtractMetricsTest, ParseErrorInWantedFamily) {
  struct Case {
    const char* what;
    const char* engine;
    std::string page;
    int line;
    const char* name;
  } cases[] = {
      {"vllm waiting bad value", "vllm",
       "# HELP vllm:num_requests_waiting x\n"
       "# TYPE vllm:num_requests_waiting gauge\n"
       "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 1.0\n"
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} abc\n",
       4, "vllm:num_requests_waiting"},
      {"vllm lora unterminated", "vllm",
       "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 1.0\n"
       "\n"
       "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"a} 1.0\n",
       3, "vllm:lora_requests_info"},
      {"vllm old kv name bad escape", "vllm",
       "vllm:gpu_cache_usage_perc{model_name=\"a\\x\"} 0.5\n", 1, "vllm:gpu_cache_usage_perc"},
      {"sglang cache info garbage", "sglang",
       "sglang:num_queue_reqs{model_name=\"m\"} 1.0\r\n"
       "sglang:cache_config_info{num_pages=\"1\",page_size=\"1\"} 1.0 12 junk\r\n",
       2, "sglang:cache_config_info"},
      {"trtllm missing value", "trtllm-serve", "trtllm_kv_cache_max_blocks\n", 1,
       "trtllm_kv_cache_max_blocks"},
      // A malformed series of a wanted name is an error even when no spec selects it.
      {"triton non-selected request type", "triton-tensorrt-llm",
       "nv_trt_llm_request_metrics{model=\"tensorrt_llm\",request_type=\"waiting\",version=\"1\"} "
       "3\n"
       "nv_trt_llm_request_metrics{model=\"tensorrt_llm\",request_type=\"max\" version=\"1\"} "
       "512\n",
       2, "nv_trt_llm_request_metrics"},
  };
  for (const auto& c : cases) {
    absl::StatusOr<ExtractResult> r = ExtractMetrics(Engine(c.engine), c.page);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << c.what << ": " << r.status();
    EXPECT_THAT(Msg(r.status()), HasSubstr("line " + std::to_string(c.line) + ":")) << c.what;
    EXPECT_THAT(Msg(r.status()), HasSubstr(c.name)) << c.what;
  }
}

TEST(ExtractMetricsTest, ParseErrorInOtherFamilyIsIgnored) {
  const std::string page = std::string(kVllmPage) +
                           "vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m} 1\n"
                           "http_requests_total{handler=\"/v1/completions\"} abc\n"
                           "sglang:num_queue_reqs{ 1\n";
  absl::StatusOr<ExtractResult> r = ExtractMetrics(Engine("vllm"), page);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->metrics.waiting_queue_size, 2);
  EXPECT_EQ(r->metrics.running_requests_size, 8);
  EXPECT_THAT(r->missing, IsEmpty());
}

TEST(ExtractMetricsTest, CrlfPage) {
  std::string page;
  for (char ch : std::string_view(kTritonPage)) {
    if (ch == '\n') page += '\r';
    page += ch;
  }
  absl::StatusOr<ExtractResult> r = ExtractMetrics(Engine("triton-tensorrt-llm"), page);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectMetricsEq(r->metrics, M(3, 5, 0.000122, 64, 8192), "crlf triton");
  EXPECT_THAT(r->missing, IsEmpty());
}

}  // namespace
}  // namespace epp::datalayer

namespace epp::datalayer {
namespace {

TEST(ExtractMetricsDisabledTest, DisabledSpecsAreNotReportedMissing) {
  EngineConfig e;
  e.name = "custom";
  e.queued = {MetricSpec{}};                   // disabled
  e.running = {MetricSpec{"my_running", {}}};  // enabled, absent from the page
  auto r = ExtractMetrics(e, "other_metric 1\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->missing, (std::vector<std::string>{"running"}));
}

}  // namespace
}  // namespace epp::datalayer
