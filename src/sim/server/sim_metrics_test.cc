#include "sim/server/sim_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "datalayer/engine_metrics.h"
#include "datalayer/prometheus_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/engine/engine.h"

namespace epp::sim {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;

constexpr double kCreated = 1755178079.975038;  // prints as 1.755178079975038e+09
const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);
absl::Time At(int ms) { return kT0 + absl::Milliseconds(ms); }

MetricsInfo Info() {
  MetricsInfo info;
  info.model_name = "m";
  info.block_size = 16;
  info.num_gpu_blocks = 101;  // 100 usable
  info.max_model_len = 100;   // 1-2-5 buckets 1 ... 100
  info.created_unix = kCreated;
  return info;
}

std::vector<std::string> Lines(const std::string& page) {
  std::vector<std::string> out;
  for (std::string_view l : Split(page, '\n')) out.emplace_back(l);
  return out;
}

// Index of `line` on the page, or -1.
int LineIndex(const std::string& page, const std::string& line) {
  std::vector<std::string> lines = Lines(page);
  auto it = std::find(lines.begin(), lines.end(), line);
  return it == lines.end() ? -1 : static_cast<int>(it - lines.begin());
}

std::string SampleName(std::string_view line) {
  return std::string(line.substr(0, line.find_first_of("{ ")));
}

const datalayer::EngineConfig& BuiltinEngine(std::string_view name) {
  static const datalayer::EngineConfig kNone;
  const datalayer::EngineConfig* e = datalayer::FindEngine(datalayer::BuiltinEngines(), name);
  if (e == nullptr) {
    ADD_FAILURE() << "no built-in engine " << name;
    return kNone;
  }
  return *e;
}

// --- Hand-built scenario -------------------------------------------------------------------
//
// Request 1 (8 prompt tokens, max_tokens 3): arrives at 0 ms, queued at 5 ms, scheduled at
// 10 ms; step 1 (10-30 ms, 8 tokens) samples its first token, step 2 (30-80 ms, 1 token) the
// second, step 3 (80-180 ms, 1 token) the third, finishing with "length".
//   TTFT 0.03 (le 0.04); ITL 0.05 (le 0.05, bounds are inclusive) and 0.1 (le 0.1);
//   TPOT (0.18 - 0.03) / 2 = 0.075 (le 0.075); e2e 0.18; queue 0.005; inference 0.17;
//   prefill 0.02; decode 0.15 (all le 0.3); iteration tokens 8, 1, 1.
TokenEvent Req1(int output_tokens) {
  TokenEvent e;
  e.id = 1;
  e.new_tokens = 1;
  e.first_token = output_tokens == 1;
  e.prompt_tokens = 8;
  e.output_tokens = output_tokens;
  e.arrival = At(0);
  e.queued = At(5);
  e.first_scheduled = At(10);
  e.first_token_time = At(30);
  return e;
}

StepResult Step(int start_ms, int end_ms, int tokens, std::vector<TokenEvent> events) {
  StepResult s;
  s.start = At(start_ms);
  s.end = At(end_ms);
  s.scheduled_tokens = tokens;
  s.events = std::move(events);
  return s;
}

void RunScenario(SimMetrics& m) {
  m.OnRequest(/*max_tokens=*/3, /*n=*/1);
  m.OnStep(Step(10, 30, 8, {Req1(1)}), EngineStats{}, 0);
  m.OnStep(Step(30, 80, 1, {Req1(2)}), EngineStats{}, 0);
  TokenEvent last = Req1(3);
  last.finish = FinishReason::kLength;
  m.OnStep(Step(80, 180, 1, {last}), EngineStats{}, 0);
}

// --- FormatPromFloat -------------------------------------------------------------------------

TEST(FormatPromFloatTest, PythonReprWithGoExponents) {
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    double v;
    const char* want;
  };
  const Case cases[] = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {3.0, "3.0"},
      {2.5, "2.5"},
      {-2.5, "-2.5"},
      {0.1, "0.1"},
      {0.1 + 0.2, "0.30000000000000004"},
      {1.0 / 3, "0.3333333333333333"},
      {0.0412, "0.0412"},
      {123.456, "123.456"},
      {0.0001, "0.0001"},  // Python keeps 4 leading zeros positional
      {1e-05, "1e-05"},    // and switches below, with a two-digit exponent
      {1.5e-07, "1.5e-07"},
      {5e-324, "5e-324"},
      {27089.0, "27089.0"},
      {999999.0, "999999.0"},  // six digits before the dot: still positional
      {123456.7, "123456.7"},
      {1000000.0, "1e+06"},  // seven: Go-style exponent, trailing zeros and dot stripped
      {1234567.0, "1.234567e+06"},
      {1755178079.975038, "1.755178079975038e+09"},
      {1755178100.5, "1.7551781005e+09"},
      {1e15, "1e+015"},  // prometheus_client's literal "e+0" prefix
      {1.5e15, "1.5e+015"},
      {1e16, "1e+16"},  // Python's own exponent form is kept
      {1e100, "1e+100"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {-1234567.0, "-1234567.0"},  // only positive values are switched
      {inf, "+Inf"},
      {-inf, "-Inf"},
      {std::nan(""), "NaN"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FormatPromFloat(c.v), c.want) << "value " << c.want;
  }
}

TEST(ParseMetricsDialectTest, KnownNamesOnly) {
  MetricsDialect d = MetricsDialect::kSglang;
  ASSERT_TRUE(ParseMetricsDialect("vllm", &d));
  EXPECT_EQ(d, MetricsDialect::kVllm);
  ASSERT_TRUE(ParseMetricsDialect("sglang", &d));
  EXPECT_EQ(d, MetricsDialect::kSglang);
  ASSERT_TRUE(ParseMetricsDialect("trtllm-serve", &d));
  EXPECT_EQ(d, MetricsDialect::kTrtllmServe);
  EXPECT_FALSE(ParseMetricsDialect("trtllm", &d));
  EXPECT_FALSE(ParseMetricsDialect("VLLM", &d));
  EXPECT_FALSE(ParseMetricsDialect("", &d));
  EXPECT_EQ(d, MetricsDialect::kTrtllmServe);  // untouched on failure
}

// --- vLLM dialect ----------------------------------------------------------------------------

TEST(SimMetricsVllmTest, FreshPageHasInfoAndZeroedFamilies) {
  SimMetrics m(Info(), MetricsDialect::kVllm);
  const std::string page = m.Render(EngineStats{});
  const std::vector<std::string> lines = Lines(page);
  EXPECT_THAT(lines,
              Contains("vllm:cache_config_info{block_size=\"16\",cache_dtype=\"auto\","
                       "enable_prefix_caching=\"True\",engine=\"0\",gpu_memory_utilization=\"0.9\","
                       "num_gpu_blocks=\"101\",prefix_caching_hash_algo=\"sha256\","
                       "sliding_window=\"None\"} 1.0"));
  EXPECT_THAT(lines, Contains("# TYPE vllm:cache_config_info gauge"));
  EXPECT_THAT(lines, Contains("vllm:engine_sleep_state{engine=\"0\",model_name=\"m\","
                              "sleep_state=\"awake\"} 1.0"));
  EXPECT_THAT(lines, Contains("vllm:engine_sleep_state{engine=\"0\",model_name=\"m\","
                              "sleep_state=\"weights_offloaded\"} 0.0"));
  EXPECT_THAT(lines, Contains("vllm:engine_sleep_state{engine=\"0\",model_name=\"m\","
                              "sleep_state=\"discard_all\"} 0.0"));
  // Every finish reason exists from the start, in vLLM's order.
  const int stop = LineIndex(
      page, R"(vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 0.0)");
  const int length = LineIndex(
      page,
      R"(vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 0.0)");
  const int abort = LineIndex(
      page, R"(vllm:request_success_total{engine="0",finished_reason="abort",model_name="m"} 0.0)");
  ASSERT_GE(stop, 0);
  EXPECT_EQ(length, stop + 1);
  EXPECT_EQ(abort, stop + 2);
  // Empty histograms still print every bucket.
  EXPECT_THAT(lines, Contains(R"(vllm:e2e_request_latency_seconds_bucket{engine="0",le="7680.0",)"
                              R"(model_name="m"} 0.0)"));
  EXPECT_THAT(lines, Contains(R"(vllm:e2e_request_latency_seconds_count{engine="0",)"
                              R"(model_name="m"} 0.0)"));
  EXPECT_THAT(lines,
              Contains(R"(vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 0.0)"));
  // No LoRA family without --enable-lora.
  EXPECT_THAT(page, Not(HasSubstr("lora_requests_info")));

  MetricsInfo off = Info();
  off.enable_prefix_caching = false;
  off.gpu_memory_utilization = 0.85;
  off.num_gpu_blocks = 27089;
  const std::string page2 = SimMetrics(off, MetricsDialect::kVllm).Render(EngineStats{});
  EXPECT_THAT(page2, HasSubstr("enable_prefix_caching=\"False\""));
  EXPECT_THAT(page2, HasSubstr("gpu_memory_utilization=\"0.85\""));
  EXPECT_THAT(page2, HasSubstr("num_gpu_blocks=\"27089\""));
}

TEST(SimMetricsVllmTest, GaugesAndCountersComeFromStats) {
  SimMetrics m(Info(), MetricsDialect::kVllm);
  EngineStats s;
  s.running = 3;
  s.waiting = 5;
  s.waiting_for_capacity = 2;
  s.kv_usage = 0.0412;
  s.prefix_queries = 204800;
  s.prefix_hits = 122880;
  s.prompt_tokens = 1000;
  s.prompt_tokens_cached = 400;
  s.generation_tokens = 1234567;
  s.preemptions = 7;
  const std::string page = m.Render(s);
  const std::vector<std::string> lines = Lines(page);
  for (
      const char* want : {
          R"(vllm:num_requests_running{engine="0",model_name="m"} 3.0)",
          R"(vllm:num_requests_waiting{engine="0",model_name="m"} 5.0)",
          R"(vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="capacity"} 2.0)",
          R"(vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="deferred"} 3.0)",
          R"(vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.0412)",
          R"(vllm:prefix_cache_queries_total{engine="0",model_name="m"} 204800.0)",
          R"(vllm:prefix_cache_hits_total{engine="0",model_name="m"} 122880.0)",
          R"(vllm:prompt_tokens_total{engine="0",model_name="m"} 1000.0)",
          R"(vllm:prompt_tokens_by_source_total{engine="0",model_name="m",source="local_compute"} 600.0)",
          R"(vllm:prompt_tokens_by_source_total{engine="0",model_name="m",source="local_cache_hit"} 400.0)",
          R"(vllm:prompt_tokens_by_source_total{engine="0",model_name="m",source="external_kv_transfer"} 0.0)",
          R"(vllm:prompt_tokens_cached_total{engine="0",model_name="m"} 400.0)",
          R"(vllm:generation_tokens_total{engine="0",model_name="m"} 1.234567e+06)",
          R"(vllm:num_preemptions_total{engine="0",model_name="m"} 7.0)",
      }) {
    EXPECT_THAT(lines, Contains(want));
  }
  // Counters: HELP/TYPE with the _total name, then the _created family.
  const int help = LineIndex(
      page,
      "# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of "
      "queried tokens.");
  ASSERT_GE(help, 0);
  EXPECT_EQ(LineIndex(page, "# TYPE vllm:prefix_cache_queries_total counter"), help + 1);
  EXPECT_EQ(LineIndex(page,
                      "# HELP vllm:prefix_cache_queries_created Prefix cache queries, in "
                      "terms of number of queried tokens."),
            help + 3);
  EXPECT_EQ(LineIndex(page, "# TYPE vllm:prefix_cache_queries_created gauge"), help + 4);
  EXPECT_EQ(LineIndex(page, R"(vllm:prefix_cache_queries_created{engine="0",model_name="m"} )"
                            "1.755178079975038e+09"),
            help + 5);
}

TEST(SimMetricsVllmTest, ScenarioExactHistogramLines) {
  SimMetrics m(Info(), MetricsDialect::kVllm);
  RunScenario(m);
  const std::string page = m.Render(EngineStats{});

  // The whole TTFT family, in prometheus_client's order.
  const std::string ttft =
      R"(# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="m"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.005",model_name="m"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.01",model_name="m"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.02",model_name="m"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.04",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.06",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.08",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.25",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.5",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.75",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="1.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="2.5",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="5.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="7.5",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="10.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="20.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="40.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="80.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="160.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="640.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="2560.0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="m"} 1.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="m"} 1.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="m"} 0.03
# HELP vllm:time_to_first_token_seconds_created Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds_created gauge
vllm:time_to_first_token_seconds_created{engine="0",model_name="m"} 1.755178079975038e+09
)";
  EXPECT_THAT(page, HasSubstr(ttft));

  const std::string success =
      R"(# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{engine="0",finished_reason="stop",model_name="m"} 0.0
vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 1.0
vllm:request_success_total{engine="0",finished_reason="abort",model_name="m"} 0.0
# HELP vllm:request_success_created Count of successfully processed requests.
# TYPE vllm:request_success_created gauge
vllm:request_success_created{engine="0",finished_reason="stop",model_name="m"} 1.755178079975038e+09
vllm:request_success_created{engine="0",finished_reason="length",model_name="m"} 1.755178079975038e+09
vllm:request_success_created{engine="0",finished_reason="abort",model_name="m"} 1.755178079975038e+09
)";
  EXPECT_THAT(page, HasSubstr(success));

  const std::vector<std::string> lines = Lines(page);
  for (
      const char* want : {
          // Steps of 8, 1 and 1 tokens; the histogram's own name ends in _total.
          "# TYPE vllm:iteration_tokens_total histogram",
          R"(vllm:iteration_tokens_total_bucket{engine="0",le="1.0",model_name="m"} 2.0)",
          R"(vllm:iteration_tokens_total_bucket{engine="0",le="8.0",model_name="m"} 3.0)",
          R"(vllm:iteration_tokens_total_bucket{engine="0",le="16384.0",model_name="m"} 3.0)",
          R"(vllm:iteration_tokens_total_count{engine="0",model_name="m"} 3.0)",
          R"(vllm:iteration_tokens_total_sum{engine="0",model_name="m"} 10.0)",
          "# TYPE vllm:iteration_tokens_total_created gauge",
          R"(vllm:iteration_tokens_total_created{engine="0",model_name="m"} 1.755178079975038e+09)",
          // ITL 0.05 lands in le=0.05 (inclusive bound), 0.1 in le=0.1.
          R"(vllm:inter_token_latency_seconds_bucket{engine="0",le="0.025",model_name="m"} 0.0)",
          R"(vllm:inter_token_latency_seconds_bucket{engine="0",le="0.05",model_name="m"} 1.0)",
          R"(vllm:inter_token_latency_seconds_bucket{engine="0",le="0.075",model_name="m"} 1.0)",
          R"(vllm:inter_token_latency_seconds_bucket{engine="0",le="0.1",model_name="m"} 2.0)",
          R"(vllm:inter_token_latency_seconds_count{engine="0",model_name="m"} 2.0)",
          // 0.05 + 0.1 in binary floating point, as Python prints it.
          R"(vllm:inter_token_latency_seconds_sum{engine="0",model_name="m"} 0.15000000000000002)",
          // TPOT: decode 0.15 over 2 tokens after the first.
          R"(vllm:request_time_per_output_token_seconds_bucket{engine="0",le="0.05",model_name="m"} 0.0)",
          R"(vllm:request_time_per_output_token_seconds_bucket{engine="0",le="0.075",model_name="m"} 1.0)",
          R"(vllm:request_time_per_output_token_seconds_sum{engine="0",model_name="m"} 0.075)",
          R"(vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="m"} 1.0)",
          R"(vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 1.0)",
          R"(vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 0.18)",
          R"(vllm:request_queue_time_seconds_sum{engine="0",model_name="m"} 0.005)",
          R"(vllm:request_inference_time_seconds_sum{engine="0",model_name="m"} 0.17)",
          R"(vllm:request_prefill_time_seconds_sum{engine="0",model_name="m"} 0.02)",
          R"(vllm:request_decode_time_seconds_sum{engine="0",model_name="m"} 0.15)",
          R"(vllm:request_decode_time_seconds_bucket{engine="0",le="0.3",model_name="m"} 1.0)",
          // Token counts: 1-2-5 buckets up to max_model_len (100).
          R"(vllm:request_prompt_tokens_bucket{engine="0",le="5.0",model_name="m"} 0.0)",
          R"(vllm:request_prompt_tokens_bucket{engine="0",le="10.0",model_name="m"} 1.0)",
          R"(vllm:request_prompt_tokens_bucket{engine="0",le="100.0",model_name="m"} 1.0)",
          R"(vllm:request_prompt_tokens_sum{engine="0",model_name="m"} 8.0)",
          R"(vllm:request_generation_tokens_bucket{engine="0",le="2.0",model_name="m"} 0.0)",
          R"(vllm:request_generation_tokens_bucket{engine="0",le="5.0",model_name="m"} 1.0)",
          R"(vllm:request_generation_tokens_sum{engine="0",model_name="m"} 3.0)",
          R"(vllm:request_max_num_generation_tokens_sum{engine="0",model_name="m"} 3.0)",
          R"(vllm:request_params_max_tokens_bucket{engine="0",le="2.0",model_name="m"} 0.0)",
          R"(vllm:request_params_max_tokens_bucket{engine="0",le="5.0",model_name="m"} 1.0)",
          R"(vllm:request_params_n_bucket{engine="0",le="1.0",model_name="m"} 1.0)",
          R"(vllm:request_params_n_bucket{engine="0",le="20.0",model_name="m"} 1.0)",
      }) {
    EXPECT_THAT(lines, Contains(want));
  }
  // 1-2-5 buckets stop at max_model_len.
  EXPECT_THAT(page, Not(HasSubstr(R"(vllm:request_prompt_tokens_bucket{engine="0",le="200.0")")));
  // The last bucket line before +Inf of the prompt-token histogram is le=100.0.
  const int b100 = LineIndex(
      page, R"(vllm:request_prompt_tokens_bucket{engine="0",le="100.0",model_name="m"} 1.0)");
  ASSERT_GE(b100, 0);
  EXPECT_EQ(
      LineIndex(page,
                R"(vllm:request_prompt_tokens_bucket{engine="0",le="+Inf",model_name="m"} 1.0)"),
      b100 + 1);
}

TEST(SimMetricsVllmTest, InterTokenLatencyIsPerRequest) {
  SimMetrics m(Info(), MetricsDialect::kVllm);
  // Two requests interleaved: A's tokens at 30 and 130 ms, B's at 80 and 330 ms.
  auto ev = [](uint64_t id, int outputs, int first_token_ms) {
    TokenEvent e;
    e.id = id;
    e.new_tokens = 1;
    e.first_token = outputs == 1;
    e.output_tokens = outputs;
    e.arrival = At(0);
    e.first_token_time = At(first_token_ms);
    return e;
  };
  m.OnStep(Step(0, 30, 1, {ev(1, 1, 30)}), EngineStats{}, 0);
  m.OnStep(Step(30, 80, 1, {ev(2, 1, 80)}), EngineStats{}, 0);
  m.OnStep(Step(80, 130, 1, {ev(1, 2, 30)}), EngineStats{}, 0);
  m.OnStep(Step(130, 330, 1, {ev(2, 2, 80)}), EngineStats{}, 0);
  const std::vector<std::string> lines = Lines(m.Render(EngineStats{}));
  // A: 0.1 s; B: 0.25 s (le 0.3). Keyed by request, not by the previous step.
  EXPECT_THAT(lines, Contains(R"(vllm:inter_token_latency_seconds_bucket{engine="0",le="0.1",)"
                              R"(model_name="m"} 1.0)"));
  EXPECT_THAT(lines, Contains(R"(vllm:inter_token_latency_seconds_bucket{engine="0",le="0.2",)"
                              R"(model_name="m"} 1.0)"));
  EXPECT_THAT(lines, Contains(R"(vllm:inter_token_latency_seconds_bucket{engine="0",le="0.3",)"
                              R"(model_name="m"} 2.0)"));
  EXPECT_THAT(lines,
              Contains(R"(vllm:inter_token_latency_seconds_sum{engine="0",model_name="m"} 0.35)"));
  EXPECT_THAT(lines, Contains(R"(vllm:time_to_first_token_seconds_sum{engine="0",)"
                              R"(model_name="m"} 0.11)"));
}

TEST(SimMetricsVllmTest, AbortsInsideAStep) {
  SimMetrics m(Info(), MetricsDialect::kVllm);
  // Request 2 gets its first token at 30 ms and is aborted in a step ending at 530 ms: its
  // decode and inference times end at its last token, its e2e at the step's end.
  TokenEvent first;
  first.id = 2;
  first.new_tokens = 1;
  first.first_token = true;
  first.output_tokens = 1;
  first.prompt_tokens = 4;
  first.arrival = At(0);
  first.queued = At(0);
  first.first_scheduled = At(10);
  first.first_token_time = At(30);
  m.OnStep(Step(10, 30, 4, {first}), EngineStats{}, 0);
  TokenEvent abort = first;
  abort.new_tokens = 0;
  abort.first_token = false;
  abort.finish = FinishReason::kAbort;
  // Request 3 never left the queue (first_scheduled unset).
  TokenEvent never;
  never.id = 3;
  never.finish = FinishReason::kAbort;
  never.prompt_tokens = 4;
  never.arrival = At(100);
  never.queued = At(100);
  m.OnStep(Step(30, 530, 1, {abort, never}), EngineStats{}, 0);

  const std::vector<std::string> lines = Lines(m.Render(EngineStats{}));
  for (const char* want : {
           R"(vllm:request_success_total{engine="0",finished_reason="abort",model_name="m"} 2.0)",
           // e2e 0.53 (le 0.8) and 0.43 (le 0.5).
           R"(vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="m"} 0.0)",
           R"(vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.5",model_name="m"} 1.0)",
           R"(vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.8",model_name="m"} 2.0)",
           // Queue and inference only for the scheduled one.
           R"(vllm:request_queue_time_seconds_count{engine="0",model_name="m"} 1.0)",
           R"(vllm:request_queue_time_seconds_sum{engine="0",model_name="m"} 0.01)",
           R"(vllm:request_inference_time_seconds_sum{engine="0",model_name="m"} 0.02)",
           R"(vllm:request_decode_time_seconds_count{engine="0",model_name="m"} 1.0)",
           R"(vllm:request_decode_time_seconds_sum{engine="0",model_name="m"} 0.0)",
           R"(vllm:request_prefill_time_seconds_count{engine="0",model_name="m"} 1.0)",
           // One token: no TPOT.
           R"(vllm:request_time_per_output_token_seconds_count{engine="0",model_name="m"} 0.0)",
           R"(vllm:request_generation_tokens_count{engine="0",model_name="m"} 2.0)",
       }) {
    EXPECT_THAT(lines, Contains(want));
  }
}

TEST(SimMetricsVllmTest, FinishedOutsideStepCountsAndForgetsTheRequest) {
  SimMetrics m(Info(), MetricsDialect::kVllm);
  TokenEvent e;
  e.id = 7;
  e.new_tokens = 1;
  e.first_token = true;
  e.output_tokens = 1;
  e.arrival = At(0);
  e.first_token_time = At(30);
  m.OnStep(Step(0, 30, 1, {e}), EngineStats{}, 0);
  TokenEvent abort = e;
  abort.new_tokens = 0;
  abort.finish = FinishReason::kAbort;
  m.OnFinishedOutsideStep(abort);
  // The id is reused by a new request: its first token is a TTFT, and its second token's ITL
  // starts at its own first token, not at the old request's.
  e.arrival = At(1000);
  e.first_token_time = At(1030);
  m.OnStep(Step(1000, 1030, 1, {e}), EngineStats{}, 0);
  TokenEvent second = e;
  second.first_token = false;
  second.output_tokens = 2;
  m.OnStep(Step(1030, 1050, 1, {second}), EngineStats{}, 0);

  const std::vector<std::string> lines = Lines(m.Render(EngineStats{}));
  EXPECT_THAT(lines, Contains(R"(vllm:request_success_total{engine="0",finished_reason="abort",)"
                              R"(model_name="m"} 1.0)"));
  // No latency without a finish time.
  EXPECT_THAT(lines, Contains(R"(vllm:e2e_request_latency_seconds_count{engine="0",)"
                              R"(model_name="m"} 0.0)"));
  EXPECT_THAT(lines, Contains(R"(vllm:time_to_first_token_seconds_count{engine="0",)"
                              R"(model_name="m"} 2.0)"));
  EXPECT_THAT(lines, Contains(R"(vllm:inter_token_latency_seconds_count{engine="0",)"
                              R"(model_name="m"} 1.0)"));
  EXPECT_THAT(lines, Contains(R"(vllm:inter_token_latency_seconds_sum{engine="0",)"
                              R"(model_name="m"} 0.02)"));
}

TEST(SimMetricsVllmTest, LoraInfoKeepsEveryCombinationWithItsLastStamp) {
  MetricsInfo info = Info();
  info.enable_lora = true;
  info.max_loras = 2;
  SimMetrics m(info, MetricsDialect::kVllm);
  auto stats = [](std::vector<std::string> running, std::vector<std::string> waiting) {
    EngineStats s;
    s.running_loras = std::move(running);
    s.waiting_loras = std::move(waiting);
    return s;
  };
  const StepResult step = Step(0, 10, 1, {});
  m.OnStep(step, stats({"sql-lora", "tweet-lora"}, {"sql-lora"}), 1755178093.512941);
  m.OnStep(step, stats({"tweet-lora"}, {}), 1755178095.25);
  m.OnStep(step, stats({"sql-lora", "tweet-lora"}, {"sql-lora"}), 1755178100.5);
  std::string page = m.Render(EngineStats{});
  const std::string want = R"(# HELP vllm:lora_requests_info Running stats on lora requests.
# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora="2",running_lora_adapters="",waiting_lora_adapters=""} 1.755178079975038e+09
vllm:lora_requests_info{max_lora="2",running_lora_adapters="sql-lora,tweet-lora",waiting_lora_adapters="sql-lora"} 1.7551781005e+09
vllm:lora_requests_info{max_lora="2",running_lora_adapters="tweet-lora",waiting_lora_adapters=""} 1.75517809525e+09
)";
  EXPECT_THAT(page, HasSubstr(want));

  // epp takes the series with the largest stamp.
  auto r = datalayer::ExtractMetrics(BuiltinEngine("vllm"), page);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->metrics.active_models, ElementsAre(Pair("sql-lora", 0), Pair("tweet-lora", 0)));
  EXPECT_THAT(r->metrics.waiting_models, ElementsAre(Pair("sql-lora", 0)));
  EXPECT_EQ(r->metrics.max_active_models, 2);

  // Idle again: the empty combination is restamped and becomes the newest.
  m.OnStep(step, stats({}, {}), 1755178200.0);
  page = m.Render(EngineStats{});
  EXPECT_THAT(Lines(page), Contains("vllm:lora_requests_info{max_lora=\"2\","
                                    "running_lora_adapters=\"\",waiting_lora_adapters=\"\"} "
                                    "1.7551782e+09"));
  r = datalayer::ExtractMetrics(BuiltinEngine("vllm"), page);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->metrics.active_models, IsEmpty());
  EXPECT_THAT(r->metrics.waiting_models, IsEmpty());
  int series = 0;
  for (const std::string& l : Lines(page)) series += l.starts_with("vllm:lora_requests_info{");
  EXPECT_EQ(series, 3);
}

TEST(SimMetricsVllmTest, RoundTripThroughEppExtractor) {
  MetricsInfo info = Info();
  info.enable_lora = true;
  info.max_loras = 4;
  info.num_gpu_blocks = 27089;
  SimMetrics m(info, MetricsDialect::kVllm);
  EngineStats s;
  s.running = 3;
  s.waiting = 5;
  s.waiting_for_capacity = 2;
  s.kv_usage = 0.0412;
  s.running_loras = {"a", "b"};
  s.waiting_loras = {"c"};
  m.OnStep(Step(0, 10, 1, {}), s, kCreated + 1);
  auto r = datalayer::ExtractMetrics(BuiltinEngine("vllm"), m.Render(s));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->missing, IsEmpty());
  EXPECT_EQ(r->metrics.waiting_queue_size, 5);
  EXPECT_EQ(r->metrics.running_requests_size, 3);
  EXPECT_EQ(r->metrics.kv_cache_usage_percent, 0.0412);
  EXPECT_THAT(r->metrics.active_models, ElementsAre(Pair("a", 0), Pair("b", 0)));
  EXPECT_THAT(r->metrics.waiting_models, ElementsAre(Pair("c", 0)));
  EXPECT_EQ(r->metrics.max_active_models, 4);
  EXPECT_EQ(r->metrics.cache_block_size, 16);
  EXPECT_EQ(r->metrics.cache_num_gpu_blocks, 27089);
}

// --- SGLang and trtllm-serve -------------------------------------------------------------------

EngineStats BusyStats() {
  EngineStats s;
  s.running = 3;
  s.waiting = 4;
  s.kv_usage = 0.25;
  s.prefix_queries = 200;
  s.prefix_hits = 50;
  s.prompt_tokens = 120;
  s.prompt_tokens_cached = 50;
  s.generation_tokens = 30;
  return s;
}

TEST(SimMetricsSglangTest, NamesLabelsAndMultiprocessLayout) {
  SimMetrics m(Info(), MetricsDialect::kSglang);
  RunScenario(m);
  const std::string page = m.Render(BusyStats());
  const std::vector<std::string> lines = Lines(page);
  const std::string sched =
      R"({engine_type="unified",model_name="m",moe_ep_rank="0",pp_rank="0",tp_rank="0"})";
  for (const std::string& want : {
           std::string("# TYPE sglang:num_running_reqs gauge"),
           "sglang:num_running_reqs" + sched + " 3.0",
           "sglang:num_queue_reqs" + sched + " 4.0",
           "sglang:token_usage" + sched + " 0.25",
           "sglang:num_used_tokens" + sched + " 400.0",  // 0.25 of 100 pages x 16
           "sglang:max_total_num_tokens" + sched + " 1600.0",
           "sglang:cache_hit_rate" + sched + " 0.25",
           std::string(R"(sglang:cache_config_info{num_pages="100",page_size="16"} 1.0)"),
           std::string("# TYPE sglang:prompt_tokens_total counter"),
           std::string(R"(sglang:prompt_tokens_total{model_name="m"} 120.0)"),
           std::string(R"(sglang:generation_tokens_total{model_name="m"} 30.0)"),
           std::string(R"(sglang:cached_tokens_total{model_name="m"} 50.0)"),
           std::string(R"(sglang:num_requests_total{model_name="m"} 1.0)"),
           std::string(R"(sglang:num_aborted_requests_total{model_name="m"} 0.0)"),
           std::string("# TYPE sglang:time_to_first_token_seconds histogram"),
           std::string(R"(sglang:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 1.0)"),
           std::string(
               R"(sglang:time_to_first_token_seconds_bucket{le="400.0",model_name="m"} 1.0)"),
           // ITL 0.05 and 0.1 on SGLang's ladder.
           std::string(
               R"(sglang:inter_token_latency_seconds_bucket{le="0.04",model_name="m"} 0.0)"),
           std::string(
               R"(sglang:inter_token_latency_seconds_bucket{le="0.06",model_name="m"} 1.0)"),
           std::string(R"(sglang:inter_token_latency_seconds_bucket{le="0.1",model_name="m"} 2.0)"),
           std::string(R"(sglang:e2e_request_latency_seconds_bucket{le="0.2",model_name="m"} 1.0)"),
           std::string(
               R"(sglang:e2e_request_latency_seconds_bucket{le="2400.0",model_name="m"} 1.0)"),
       }) {
    EXPECT_THAT(lines, Contains(want));
  }
  // Multiprocess layout: _sum first, then the buckets, then _count; no _created series.
  const int sum = LineIndex(page, R"(sglang:time_to_first_token_seconds_sum{model_name="m"} 0.03)");
  const int first_bucket =
      LineIndex(page, R"(sglang:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 1.0)");
  const int inf =
      LineIndex(page, R"(sglang:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 1.0)");
  const int count =
      LineIndex(page, R"(sglang:time_to_first_token_seconds_count{model_name="m"} 1.0)");
  ASSERT_GE(sum, 0);
  EXPECT_EQ(first_bucket, sum + 1);
  EXPECT_EQ(inf, sum + 19);  // 18 finite bounds
  EXPECT_EQ(count, inf + 1);
  EXPECT_THAT(page, Not(HasSubstr("_created")));
  EXPECT_THAT(page, Not(HasSubstr("vllm:")));
}

TEST(SimMetricsSglangTest, CacheHitRateIsZeroWithoutQueries) {
  SimMetrics m(Info(), MetricsDialect::kSglang);
  EXPECT_THAT(Lines(m.Render(EngineStats{})),
              Contains(R"(sglang:cache_hit_rate{engine_type="unified",model_name="m",)"
                       R"(moe_ep_rank="0",pp_rank="0",tp_rank="0"} 0.0)"));
}

TEST(SimMetricsTrtllmTest, NamesAndLabels) {
  SimMetrics m(Info(), MetricsDialect::kTrtllmServe);
  RunScenario(m);
  const std::string page = m.Render(BusyStats());
  const std::vector<std::string> lines = Lines(page);
  for (const char* want : {
           "# TYPE trtllm_num_requests_waiting gauge",
           R"(trtllm_num_requests_waiting{model_name="m"} 4.0)",
           R"(trtllm_num_requests_running{model_name="m"} 3.0)",
           R"(trtllm_kv_cache_utilization{model_name="m"} 0.25)",
           R"(trtllm_kv_cache_tokens_per_block{model_name="m"} 16.0)",
           R"(trtllm_kv_cache_max_blocks{model_name="m"} 100.0)",
           "# TYPE trtllm_time_to_first_token_seconds histogram",
           R"(trtllm_time_to_first_token_seconds_bucket{le="0.04",model_name="m"} 1.0)",
           R"(trtllm_time_to_first_token_seconds_count{model_name="m"} 1.0)",
           R"(trtllm_time_to_first_token_seconds_sum{model_name="m"} 0.03)",
           R"(trtllm_time_to_first_token_seconds_created{model_name="m"} 1.755178079975038e+09)",
           R"(trtllm_e2e_request_latency_seconds_bucket{le="0.3",model_name="m"} 1.0)",
           R"(trtllm_e2e_request_latency_seconds_sum{model_name="m"} 0.18)",
       }) {
    EXPECT_THAT(lines, Contains(want));
  }
  EXPECT_THAT(page, Not(HasSubstr("vllm:")));
}

struct DialectCase {
  const char* engine;
  MetricsDialect dialect;
  int64_t want_blocks;
};

class RoundTripTest : public ::testing::TestWithParam<DialectCase> {};

// What epp reads back from each dialect's page.
TEST_P(RoundTripTest, EppReadsWhatTheSimulatorWrites) {
  SimMetrics m(Info(), GetParam().dialect);
  RunScenario(m);
  auto r = datalayer::ExtractMetrics(BuiltinEngine(GetParam().engine), m.Render(BusyStats()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->missing, IsEmpty());
  EXPECT_EQ(r->metrics.waiting_queue_size, 4);
  EXPECT_EQ(r->metrics.running_requests_size, 3);
  EXPECT_EQ(r->metrics.kv_cache_usage_percent, 0.25);
  EXPECT_EQ(r->metrics.cache_block_size, 16);
  EXPECT_EQ(r->metrics.cache_num_gpu_blocks, GetParam().want_blocks);
}

// Structure every page must have: each family introduced by HELP then TYPE, samples named after
// their family, labels sorted, and every line accepted by epp's parser.
TEST_P(RoundTripTest, PageIsWellFormed) {
  MetricsInfo info = Info();
  info.enable_lora = true;
  SimMetrics m(info, GetParam().dialect);
  RunScenario(m);
  const std::string page = m.Render(BusyStats());
  ASSERT_FALSE(page.empty());
  ASSERT_EQ(page.back(), '\n');

  std::string family;
  std::string type;
  std::set<std::string> families;
  std::set<std::string> counters_and_histograms;
  std::vector<std::string> names;
  int samples = 0;
  std::vector<std::string> lines = Lines(page);
  lines.pop_back();  // after the final newline
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l.starts_with("# HELP ")) {
      family = l.substr(7, l.find(' ', 7) - 7);
      EXPECT_TRUE(families.insert(family).second) << "family twice: " << family;
      ASSERT_LT(i + 1, lines.size());
      EXPECT_TRUE(lines[i + 1].starts_with(StrCat("# TYPE ", family, " "))) << lines[i + 1];
      type = lines[i + 1].substr(8 + family.size());
      if (type == "counter" || type == "histogram") counters_and_histograms.insert(family);
      ++i;
      continue;
    }
    ASSERT_FALSE(l.starts_with("#")) << l;
    const std::string name = SampleName(l);
    if (type == "histogram") {
      EXPECT_TRUE(name == family + "_bucket" || name == family + "_count" ||
                  name == family + "_sum")
          << l;
    } else {
      EXPECT_EQ(name, family) << l;
    }
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    ++samples;
    // Label names in order (values here hold no commas or quotes).
    const size_t open = l.find('{');
    if (open != std::string::npos) {
      std::vector<std::string> keys;
      const std::string label_text = l.substr(open + 1, l.find('}') - open - 1);
      for (std::string_view kv : Split(label_text, ',')) {
        keys.emplace_back(kv.substr(0, kv.find('=')));
      }
      EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end())) << l;
    }
  }
  // Single-process pages (vLLM, trtllm-serve) carry a _created gauge for every counter and
  // histogram; SGLang's multiprocess page carries none.
  for (const std::string& f : counters_and_histograms) {
    std::string base = f;
    if (f.ends_with("_total") && !f.ends_with("iteration_tokens_total")) {
      base = f.substr(0, f.size() - 6);
    }
    EXPECT_EQ(families.count(base + "_created"),
              GetParam().dialect != MetricsDialect::kSglang ? 1u : 0u)
        << f;
  }

  std::vector<std::string_view> wanted(names.begin(), names.end());
  int parsed = 0;
  absl::Status s =
      datalayer::ParseExposition(page, wanted, [&parsed](const datalayer::Sample&) { ++parsed; });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(parsed, samples);
}

INSTANTIATE_TEST_SUITE_P(Dialects, RoundTripTest,
                         ::testing::Values(DialectCase{"vllm", MetricsDialect::kVllm, 101},
                                           DialectCase{"sglang", MetricsDialect::kSglang, 100},
                                           DialectCase{"trtllm-serve", MetricsDialect::kTrtllmServe,
                                                       100}),
                         [](const ::testing::TestParamInfo<DialectCase>& p) {
                           switch (p.param.dialect) {
                             case MetricsDialect::kVllm:
                               return std::string("Vllm");
                             case MetricsDialect::kSglang:
                               return std::string("Sglang");
                             case MetricsDialect::kTrtllmServe:
                               return std::string("TrtllmServe");
                           }
                           return std::string("Unknown");
                         });

// --- Driven by the real engine -------------------------------------------------------------------

TEST(SimMetricsEngineTest, CountsMatchARealRun) {
  EngineConfig c;
  c.max_num_seqs = 4;
  c.max_num_batched_tokens = 64;
  c.block_size = 4;
  c.num_gpu_blocks = 101;
  c.max_model_len = 256;
  c.cost.step_base = absl::Milliseconds(10);
  c.cost.per_prefill_token = absl::Milliseconds(1);
  c.cost.per_decode_seq = absl::ZeroDuration();
  c.cost.frontend_overhead = absl::ZeroDuration();
  ASSERT_TRUE(ValidateEngineConfig(c).ok());
  Engine engine(c);
  MetricsInfo info = Info();
  info.block_size = 4;
  info.max_model_len = 256;
  SimMetrics m(info, MetricsDialect::kVllm);

  absl::Time now = kT0;
  for (uint64_t id : {1, 2}) {
    RequestSpec spec;
    spec.id = id;
    spec.prompt = std::vector<TokenId>(10, static_cast<TokenId>(id));
    spec.max_tokens = 4;
    spec.ignore_eos = true;
    ASSERT_TRUE(engine.Submit(spec, now).ok());
    m.OnRequest(spec.max_tokens, 1);
  }
  bool checked_mid_run = false;
  while (auto end = engine.StartStep(now)) {
    now = *end;
    StepResult step = engine.FinishStep();
    const EngineStats stats = engine.Stats();
    m.OnStep(step, stats, absl::ToDoubleSeconds(now - absl::UnixEpoch()));
    if (!checked_mid_run) {
      // After the first step both requests are running, as epp reads it.
      auto r = datalayer::ExtractMetrics(BuiltinEngine("vllm"), m.Render(stats));
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->metrics.running_requests_size, 2);
      EXPECT_EQ(r->metrics.waiting_queue_size, 0);
      EXPECT_GT(r->metrics.kv_cache_usage_percent, 0);
      checked_mid_run = true;
    }
  }
  ASSERT_TRUE(engine.idle());
  const std::vector<std::string> lines = Lines(m.Render(engine.Stats()));
  // One prefill step (20 tokens, 30 ms) then three decode steps (2 tokens, 10 ms each):
  // TTFT 0.03 for both, 2 x 3 ITLs of 0.01, e2e 0.06.
  for (const char* want : {
           R"(vllm:request_success_total{engine="0",finished_reason="length",model_name="m"} 2.0)",
           R"(vllm:generation_tokens_total{engine="0",model_name="m"} 8.0)",
           R"(vllm:prompt_tokens_total{engine="0",model_name="m"} 20.0)",
           R"(vllm:num_requests_running{engine="0",model_name="m"} 0.0)",
           R"(vllm:iteration_tokens_total_count{engine="0",model_name="m"} 4.0)",
           R"(vllm:iteration_tokens_total_sum{engine="0",model_name="m"} 26.0)",
           R"(vllm:time_to_first_token_seconds_bucket{engine="0",le="0.04",model_name="m"} 2.0)",
           R"(vllm:inter_token_latency_seconds_bucket{engine="0",le="0.01",model_name="m"} 6.0)",
           R"(vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 2.0)",
           R"(vllm:request_params_max_tokens_count{engine="0",model_name="m"} 2.0)",
       }) {
    EXPECT_THAT(lines, Contains(want));
  }
}

}  // namespace
}  // namespace epp::sim
