// Calibration of the default cost model against the published vLLM v0.11 run (Llama-3.1-8B,
// one H100, max_num_seqs 128, ~204-token prompts sharing a 128-token system prompt, 64 output
// tokens, constant-rate stages of 60 s; model-servers.md §4.6), in virtual time. Each figure
// must land within 15% of the published one.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <numeric>

#include "sim/engine/engine.h"

namespace epp::sim {
namespace {

struct StageResult {
  double ttft_mean_ms = 0;
  double per_token_ms = 0;  // mean over requests of e2e latency / output tokens
  double achieved_rps = 0;  // completions per second over the stage's second half
};

// Request i: one of 10 system prompts (128 shared tokens) + a 76-token question of its own.
// The questions are unique, as the §4.6 fit assumes (only the system prompt, ~120 of the 204
// tokens, hits). The published run cycled a pool of 100 prompts, so its whole prompts could hit;
// this model would then put cached saturation near 228 req/s against the measured 176, because
// the real server's front-end costs at >10k streamed tokens/s are not modelled.
std::vector<TokenId> PromptFor(int i) {
  int group = i % 10;
  std::vector<TokenId> p;
  for (int t = 0; t < 128; ++t) p.push_back(static_cast<TokenId>(1'000'000 * (group + 1) + t));
  for (int t = 0; t < 76; ++t) p.push_back(static_cast<TokenId>(100'000'000 + 100 * i + t));
  return p;
}

StageResult RunStage(double rate, bool prefix_caching) {
  EngineConfig c;
  c.max_num_seqs = 128;
  c.max_model_len = 512;
  c.enable_prefix_caching = prefix_caching;
  Engine engine(c);
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  const absl::Duration stage = absl::Seconds(60);
  const absl::Duration gap = absl::Seconds(1) / rate;
  std::map<uint64_t, absl::Time> arrival;
  double ttft_sum = 0, per_token_sum = 0;
  int finished = 0, finished_late = 0;
  uint64_t next_id = 0;
  absl::Time next_arrival = t0;
  std::optional<absl::Time> step_end;
  absl::Time now = t0;
  while (true) {
    // Next event: a step ending, an arrival, or a wake-up of the idle engine.
    absl::Time t = absl::InfiniteFuture();
    if (step_end) t = *step_end;
    if (next_arrival < t0 + stage) t = std::min(t, next_arrival);
    if (!step_end) {
      if (auto w = engine.NextWakeTime()) t = std::min(t, *w);
    }
    if (t == absl::InfiniteFuture()) break;
    now = t;
    if (step_end && *step_end == now) {
      step_end.reset();
      for (const TokenEvent& e : engine.FinishStep().events) {
        if (e.first_token) ttft_sum += absl::ToDoubleMilliseconds(e.first_token_time - e.arrival);
        if (e.finish != FinishReason::kNone) {
          per_token_sum += absl::ToDoubleMilliseconds(now - e.arrival) / e.output_tokens;
          ++finished;
          if (now >= t0 + stage / 2 && now < t0 + stage) ++finished_late;
        }
      }
    }
    while (next_arrival <= now && next_arrival < t0 + stage) {
      RequestSpec s;
      s.id = next_id;
      s.prompt = PromptFor(static_cast<int>(next_id));
      s.max_tokens = 64;
      s.ignore_eos = true;
      EXPECT_TRUE(engine.Submit(std::move(s), next_arrival).ok());
      ++next_id;
      next_arrival = t0 + gap * static_cast<double>(next_id);
    }
    if (!step_end) step_end = engine.StartStep(now);
  }
  StageResult r;
  r.ttft_mean_ms = ttft_sum / finished;
  r.per_token_ms = per_token_sum / finished;
  r.achieved_rps = finished_late / absl::ToDoubleSeconds(stage / 2);
  return r;
}

void ExpectWithin15Percent(double got, double published, const char* what) {
  std::printf("calibration: %s: model %.2f, published %.2f (%+.1f%%)\n", what, got, published,
              100.0 * (got - published) / published);
  EXPECT_NEAR(got, published, 0.15 * published)
      << what << ": model " << got << ", published " << published;
}

TEST(CalibrationTest, TimeToFirstTokenAtLowLoad) {
  StageResult r = RunStage(1.0, /*prefix_caching=*/false);
  ExpectWithin15Percent(r.ttft_mean_ms, 31.1, "TTFT mean at 1 req/s (ms)");
}

TEST(CalibrationTest, PerTokenLatencyUnderLoad) {
  struct Point {
    double rate, published_ms;
  };
  for (Point p : {Point{31.4, 8.9}, Point{61.8, 11.0}, Point{92.2, 16.6}}) {
    StageResult r = RunStage(p.rate, /*prefix_caching=*/false);
    ExpectWithin15Percent(r.per_token_ms, p.published_ms, "e2e / output tokens (ms)");
  }
}

TEST(CalibrationTest, SaturationWithoutPrefixCaching) {
  StageResult r = RunStage(122.6, /*prefix_caching=*/false);
  ExpectWithin15Percent(r.achieved_rps, 106.5, "achieved req/s at 122.6 offered");
}

TEST(CalibrationTest, SaturationWithPrefixCaching) {
  StageResult r = RunStage(212.2, /*prefix_caching=*/true);
  ExpectWithin15Percent(r.achieved_rps, 175.7, "achieved req/s at 212.2 offered");
}

}  // namespace
}  // namespace epp::sim
