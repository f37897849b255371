#include "sim/engine/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace epp::sim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);
absl::Duration Ms(double ms) { return absl::Microseconds(ms * 1000); }

// Round numbers so every expectation below can be computed by hand: a step costs 10 ms, plus
// 1 ms per prefill token and 0.5 ms per decoding sequence; no front-end overhead.
EngineConfig SmallConfig() {
  EngineConfig c;
  c.max_num_seqs = 4;
  c.max_num_batched_tokens = 64;
  c.block_size = 4;
  c.num_gpu_blocks = 101;  // 100 usable
  c.max_model_len = 256;
  c.cost.step_base = Ms(10);
  c.cost.per_prefill_token = Ms(1);
  c.cost.per_decode_seq = Ms(0.5);
  c.cost.frontend_overhead = absl::ZeroDuration();
  c.cost.lora_factor = 0.5;
  c.cost.lora_load = Ms(100);
  c.cost.lora_activate = Ms(5);
  return c;
}

std::vector<TokenId> Prompt(int n, TokenId base) {
  std::vector<TokenId> p;
  for (int i = 0; i < n; ++i) p.push_back(base + static_cast<TokenId>(i));
  return p;
}

RequestSpec Spec(uint64_t id, std::vector<TokenId> prompt, int max_tokens) {
  RequestSpec s;
  s.id = id;
  s.prompt = std::move(prompt);
  s.max_tokens = max_tokens;
  s.ignore_eos = true;
  return s;
}

// Drives an engine in virtual time until it is idle; records every event with its time.
struct Driver {
  explicit Driver(EngineConfig c) : engine(std::move(c)) {}
  struct Seen {
    absl::Time at;
    TokenEvent event;
  };
  absl::Time now = kT0;
  Engine engine;
  std::vector<Seen> seen;
  std::vector<StepResult> steps;

  // Runs one step (waking first if idle); false when nothing is left to do.
  bool Step() {
    auto end = engine.StartStep(now);
    if (!end) {
      auto wake = engine.NextWakeTime();
      if (!wake) return false;
      now = *wake;
      return true;
    }
    now = *end;
    StepResult r = engine.FinishStep();
    for (const auto& e : r.events) seen.push_back({now, e});
    steps.push_back(std::move(r));
    return true;
  }
  void RunToIdle() {
    while (Step()) {
    }
  }
  std::vector<Seen> For(uint64_t id) const {
    std::vector<Seen> out;
    for (const auto& s : seen) {
      if (s.event.id == id) out.push_back(s);
    }
    return out;
  }
};

TEST(EngineTest, PrefillThenOneTokenPerDecodeStep) {
  Driver d(SmallConfig());
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(10, 1000), 3), kT0).ok());
  d.RunToIdle();
  auto ev = d.For(1);
  ASSERT_EQ(ev.size(), 3u);
  // Step 1: 10 prefill tokens = 10 + 10 ms; the prompt completes, so it samples token 1.
  EXPECT_EQ(ev[0].at - kT0, Ms(20));
  EXPECT_TRUE(ev[0].event.first_token);
  EXPECT_EQ(ev[0].event.first_token_time, kT0 + Ms(20));
  // Steps 2 and 3: one decoding sequence = 10.5 ms each.
  EXPECT_EQ(ev[1].at - kT0, Ms(30.5));
  EXPECT_EQ(ev[2].at - kT0, Ms(41));
  EXPECT_EQ(ev[2].event.finish, FinishReason::kLength);
  EXPECT_EQ(ev[2].event.output_tokens, 3);
  EXPECT_TRUE(d.engine.idle());
  EngineStats s = d.engine.Stats();
  EXPECT_EQ(s.prompt_tokens, 10u);
  EXPECT_EQ(s.generation_tokens, 3u);
  EXPECT_DOUBLE_EQ(s.kv_usage, 0.0);
}

TEST(EngineTest, ChunkedPrefillUnderTheTokenBudget) {
  EngineConfig c = SmallConfig();
  c.max_num_batched_tokens = 8;
  Driver d(c);
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(20, 1000), 1), kT0).ok());
  d.RunToIdle();
  ASSERT_EQ(d.steps.size(), 3u);
  EXPECT_EQ(d.steps[0].scheduled_tokens, 8);
  EXPECT_EQ(d.steps[1].scheduled_tokens, 8);
  EXPECT_EQ(d.steps[2].scheduled_tokens, 4);
  EXPECT_TRUE(d.steps[0].events.empty());  // no token until the prompt is complete
  auto ev = d.For(1);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].at - kT0, Ms(18 + 18 + 14));
  EXPECT_EQ(ev[0].event.finish, FinishReason::kLength);
}

TEST(EngineTest, RunningRequestsAreScheduledBeforeNewOnes) {
  EngineConfig c = SmallConfig();
  c.max_num_batched_tokens = 8;
  Driver d(c);
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(4, 1000), 5), kT0).ok());
  ASSERT_TRUE(d.Step());  // request 1 prefilled, first token out
  ASSERT_TRUE(d.engine.Submit(Spec(2, Prompt(20, 2000), 1), d.now).ok());
  ASSERT_TRUE(d.Step());
  // Request 1 decodes (1 token) and request 2 gets the remaining 7 of the budget.
  EXPECT_EQ(d.steps[1].scheduled_tokens, 8);
  EXPECT_EQ(d.steps[1].decode_seqs, 1);
  EXPECT_EQ(d.steps[1].prefill_tokens, 7);
  EXPECT_EQ(d.steps[1].end - d.steps[1].start, Ms(10 + 7 + 0.5));
}

TEST(EngineTest, MaxNumSeqsHoldsTheRestInTheQueue) {
  EngineConfig c = SmallConfig();
  c.max_num_seqs = 2;
  Driver d(c);
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(d.engine.Submit(Spec(id, Prompt(4, 1000 * id), 4), kT0).ok());
  }
  ASSERT_TRUE(d.Step());
  EngineStats s = d.engine.Stats();
  EXPECT_EQ(s.running, 2);
  EXPECT_EQ(s.waiting, 1);
  EXPECT_EQ(s.waiting_for_capacity, 1);
  d.RunToIdle();
  // Request 3 starts only after one of the first two finished (4 steps in).
  auto first3 = d.For(3).front();
  EXPECT_GE(first3.event.first_scheduled, d.For(1).back().at);
  EXPECT_EQ(first3.event.queued, kT0);
}

TEST(EngineTest, FrontEndOverheadDelaysQueueing) {
  EngineConfig c = SmallConfig();
  c.cost.frontend_overhead = Ms(15);
  Driver d(c);
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(4, 1000), 1), kT0).ok());
  EXPECT_FALSE(d.engine.StartStep(kT0).has_value());
  EXPECT_EQ(d.engine.NextWakeTime(), kT0 + Ms(15));
  d.RunToIdle();
  auto ev = d.For(1);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].event.queued, kT0 + Ms(15));
  EXPECT_EQ(ev[0].event.first_token_time - ev[0].event.arrival, Ms(15 + 14));
}

TEST(EngineTest, PrefixHitIsBlockAlignedAndCappedBelowThePromptLength) {
  Driver d(SmallConfig());
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(12, 1000), 1), kT0).ok());
  d.RunToIdle();
  // Same 12-token prompt: three full blocks cached, but the last token is always recomputed,
  // so only two blocks (8 tokens) hit.
  ASSERT_TRUE(d.engine.Submit(Spec(2, Prompt(12, 1000), 1), d.now).ok());
  d.RunToIdle();
  EXPECT_EQ(d.For(2).front().event.cached_tokens, 8);
  EXPECT_EQ(d.steps.back().prefill_tokens, 4);
  // One more token: now all three blocks hit.
  ASSERT_TRUE(d.engine.Submit(Spec(3, Prompt(13, 1000), 1), d.now).ok());
  d.RunToIdle();
  EXPECT_EQ(d.For(3).front().event.cached_tokens, 12);
  EXPECT_EQ(d.steps.back().prefill_tokens, 1);
  EngineStats s = d.engine.Stats();
  EXPECT_EQ(s.prefix_queries, 12u + 12u + 13u);
  EXPECT_EQ(s.prefix_hits, 0u + 8u + 12u);
  EXPECT_EQ(s.prompt_tokens_cached, 20u);
}

TEST(EngineTest, CacheSaltAndAdapterIsolateThePrefixCache) {
  EngineConfig c = SmallConfig();
  c.enable_lora = true;
  c.max_loras = 2;
  c.cost.lora_load = absl::ZeroDuration();
  Driver d(c);
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(13, 1000), 1), kT0).ok());
  d.RunToIdle();
  RequestSpec salted = Spec(2, Prompt(13, 1000), 1);
  salted.cache_salt = "tenant-b";
  ASSERT_TRUE(d.engine.Submit(salted, d.now).ok());
  d.RunToIdle();
  EXPECT_EQ(d.For(2).front().event.cached_tokens, 0);
  RequestSpec adapter = Spec(3, Prompt(13, 1000), 1);
  adapter.lora = "sql";
  ASSERT_TRUE(d.engine.Submit(adapter, d.now).ok());
  d.RunToIdle();
  EXPECT_EQ(d.For(3).front().event.cached_tokens, 0);
  // The salted prompt is cached under its own salt.
  RequestSpec salted_again = Spec(4, Prompt(13, 1000), 1);
  salted_again.cache_salt = "tenant-b";
  ASSERT_TRUE(d.engine.Submit(salted_again, d.now).ok());
  d.RunToIdle();
  EXPECT_EQ(d.For(4).front().event.cached_tokens, 12);
}

TEST(EngineTest, PrefixCachingOffNeverHits) {
  EngineConfig c = SmallConfig();
  c.enable_prefix_caching = false;
  Driver d(c);
  for (uint64_t id = 1; id <= 2; ++id) {
    ASSERT_TRUE(d.engine.Submit(Spec(id, Prompt(13, 1000), 1), d.now).ok());
    d.RunToIdle();
  }
  EXPECT_EQ(d.For(2).front().event.cached_tokens, 0);
  EXPECT_EQ(d.engine.Stats().prefix_queries, 0u);
}

TEST(EngineTest, EvictionTakesTheSuffixBeforeTheSharedPrefix) {
  EngineConfig c = SmallConfig();
  c.num_gpu_blocks = 5;  // 4 usable blocks of 4 tokens
  c.max_model_len = 16;
  Driver d(c);
  // A: 12 tokens = 3 full blocks, all cached when it finishes (freed suffix first).
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(12, 1000), 1), kT0).ok());
  d.RunToIdle();
  // B: 8 new tokens need 2 blocks: the never-used block, then the least recently freed one,
  // which is A's last block.
  ASSERT_TRUE(d.engine.Submit(Spec(2, Prompt(8, 5000), 1), d.now).ok());
  d.RunToIdle();
  EXPECT_EQ(d.engine.Stats().evictions, 1u);
  // A again with one token more: its first two blocks still hit, the third was evicted.
  ASSERT_TRUE(d.engine.Submit(Spec(3, Prompt(13, 1000), 1), d.now).ok());
  d.RunToIdle();
  EXPECT_EQ(d.For(3).front().event.cached_tokens, 8);
}

TEST(EngineTest, RecomputePreemptionOfTheNewestRequestWhenBlocksRunOut) {
  EngineConfig c = SmallConfig();
  c.num_gpu_blocks = 7;  // 6 usable blocks = 24 tokens
  c.max_model_len = 24;
  Driver d(c);
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(8, 1000), 10), kT0).ok());
  ASSERT_TRUE(d.engine.Submit(Spec(2, Prompt(8, 2000), 10), kT0).ok());
  // Step 1 prefills both (2 blocks each) and samples token 9 of each. Step 2 computes token 9
  // (a third block each: 6 of 6 used), steps 3..5 tokens 10..12; step 6 needs a fourth block
  // for token 13 of request 1: request 2 (the newest) is preempted and goes back to the front
  // of the queue.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(d.Step());
  EXPECT_EQ(d.engine.Stats().preemptions, 0u);
  EXPECT_DOUBLE_EQ(d.engine.Stats().kv_usage, 1.0);
  ASSERT_TRUE(d.Step());
  EngineStats s = d.engine.Stats();
  EXPECT_EQ(s.preemptions, 1u);
  EXPECT_EQ(s.running, 1);
  EXPECT_EQ(s.waiting, 1);
  EXPECT_EQ(d.steps.back().scheduled_tokens, 1);  // no admission in a step that preempted
  d.RunToIdle();
  auto ev1 = d.For(1);
  auto ev2 = d.For(2);
  EXPECT_EQ(ev1.back().event.output_tokens, 10);
  EXPECT_EQ(ev2.back().event.output_tokens, 10);
  EXPECT_EQ(ev2.back().event.preemptions, 1);
  EXPECT_EQ(ev1.back().event.preemptions, 0);
  // The tokens counted once each despite the recompute.
  EXPECT_EQ(d.engine.Stats().generation_tokens, 20u);
  EXPECT_DOUBLE_EQ(d.engine.Stats().kv_usage, 0.0);
}

TEST(EngineTest, EndOfSequenceStopsBeforeMaxTokensUnlessIgnored) {
  Driver d(SmallConfig());
  RequestSpec s = Spec(1, Prompt(4, 1000), 5);
  s.ignore_eos = false;
  s.eos_after = 2;
  ASSERT_TRUE(d.engine.Submit(s, kT0).ok());
  RequestSpec ignored = Spec(2, Prompt(4, 2000), 5);
  ignored.eos_after = 2;  // ignore_eos is set by Spec()
  ASSERT_TRUE(d.engine.Submit(ignored, kT0).ok());
  d.RunToIdle();
  EXPECT_EQ(d.For(1).back().event.finish, FinishReason::kStop);
  EXPECT_EQ(d.For(1).back().event.output_tokens, 2);
  EXPECT_EQ(d.For(2).back().event.finish, FinishReason::kLength);
  EXPECT_EQ(d.For(2).back().event.output_tokens, 5);
}

TEST(EngineTest, LoraSlotsLimitDistinctAdaptersPerBatch) {
  EngineConfig c = SmallConfig();
  c.enable_lora = true;
  c.max_loras = 1;
  c.max_cpu_loras = 2;
  Driver d(c);
  RequestSpec a = Spec(1, Prompt(4, 1000), 3);
  a.lora = "a";
  RequestSpec b = Spec(2, Prompt(4, 2000), 3);
  b.lora = "b";
  ASSERT_TRUE(d.engine.Submit(a, kT0).ok());
  ASSERT_TRUE(d.engine.Submit(b, kT0).ok());
  // Adapter "a" is cold: it loads for 100 ms, nothing runs meanwhile.
  EXPECT_FALSE(d.engine.StartStep(kT0).has_value());
  EXPECT_EQ(d.engine.NextWakeTime(), kT0 + Ms(100));
  EXPECT_EQ(d.engine.Stats().waiting_loras, (std::vector<std::string>{"a", "b"}));
  d.now = kT0 + Ms(100);
  ASSERT_TRUE(d.Step());
  // "a" runs; "b" waits because the batch already holds max_loras = 1 adapter.
  EngineStats s = d.engine.Stats();
  EXPECT_THAT(s.running_loras, ElementsAre("a"));
  EXPECT_THAT(s.waiting_loras, ElementsAre("b"));
  EXPECT_EQ(s.waiting_for_capacity, 0);  // deferred, not capacity
  // Step time with one adapter: (10 + 4) × 1.5 + 5 ms activation.
  EXPECT_EQ(d.steps[0].end - d.steps[0].start, Ms(14 * 1.5 + 5));
  d.RunToIdle();
  EXPECT_GE(d.For(2).front().event.first_scheduled, d.For(1).back().at);
}

TEST(EngineTest, TwoAdaptersCompetingForOneCpuSlotBothFinish) {
  // max_cpu_loras = max_loras = 1: loading one adapter must not evict the other while it is
  // loading or wanted, or the two evict each other forever.
  EngineConfig c = SmallConfig();
  c.enable_lora = true;
  c.max_loras = 1;
  Driver d(c);
  RequestSpec a = Spec(1, Prompt(4, 1000), 3);
  a.lora = "a";
  RequestSpec b = Spec(2, Prompt(4, 2000), 3);
  b.lora = "b";
  ASSERT_TRUE(d.engine.Submit(a, kT0).ok());
  ASSERT_TRUE(d.engine.Submit(b, kT0).ok());
  for (int i = 0; i < 100 && !d.engine.idle(); ++i) ASSERT_TRUE(d.Step());
  ASSERT_TRUE(d.engine.idle()) << "adapters kept evicting each other";
  EXPECT_EQ(d.For(1).back().event.finish, FinishReason::kLength);
  EXPECT_EQ(d.For(2).back().event.finish, FinishReason::kLength);
  // a loaded (100 ms) and ran; then b loaded after a was done and ran.
  EXPECT_GE(d.For(2).front().event.first_scheduled, d.For(1).back().at + Ms(100));
}

TEST(EngineTest, RefusedAdmissionDoesNotTakeAGpuSlot) {
  // An adapter whose request is refused for lack of KV blocks is not marked resident: when it
  // is admitted later it pays the activation.
  EngineConfig c = SmallConfig();
  c.enable_lora = true;
  c.max_loras = 2;
  c.cost.lora_load = absl::ZeroDuration();
  c.num_gpu_blocks = 5;  // 4 usable blocks of 4 tokens
  c.max_model_len = 16;
  Driver d(c);
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(12, 1000), 2), kT0).ok());  // 3 blocks + growth
  RequestSpec big = Spec(2, Prompt(8, 2000), 1);
  big.lora = "x";
  d.engine.LoadLora("x", kT0);
  ASSERT_TRUE(d.engine.Submit(big, kT0).ok());
  ASSERT_TRUE(d.Step());  // request 1 takes 3 blocks; x's request needs 2, only 1 free: refused
  EXPECT_EQ(d.steps[0].end - d.steps[0].start, Ms(10 + 12));  // no activation charged
  d.RunToIdle();
  auto first_x_step = std::find_if(d.steps.begin(), d.steps.end(),
                                   [](const StepResult& s) { return s.prefill_tokens == 8; });
  ASSERT_NE(first_x_step, d.steps.end());
  // (10 + 8 prefill tokens) × (1 + 0.5 × 1 adapter) + 5 ms activation.
  EXPECT_EQ(first_x_step->end - first_x_step->start, Ms(18 * 1.5 + 5));
}

TEST(EngineTest, LoadedAdapterIsWarmAndUnloadMakesItColdAgain) {
  EngineConfig c = SmallConfig();
  c.enable_lora = true;
  Driver d(c);
  d.engine.LoadLora("a", kT0);
  d.now = kT0 + Ms(100);
  RequestSpec a = Spec(1, Prompt(4, 1000), 1);
  a.lora = "a";
  ASSERT_TRUE(d.engine.Submit(a, d.now).ok());
  ASSERT_TRUE(d.engine.StartStep(d.now).has_value());
  d.engine.FinishStep();
  d.engine.UnloadLora("a");
  a.id = 2;
  ASSERT_TRUE(d.engine.Submit(a, d.now).ok());
  EXPECT_FALSE(d.engine.StartStep(d.now).has_value());
  EXPECT_EQ(d.engine.NextWakeTime(), d.now + Ms(100));
}

TEST(EngineTest, AbortFreesEverythingWhereverTheRequestIs) {
  Driver d(SmallConfig());
  ASSERT_TRUE(d.engine.Submit(Spec(1, Prompt(8, 1000), 50), kT0).ok());
  ASSERT_TRUE(d.engine.Submit(Spec(2, Prompt(8, 2000), 50), kT0).ok());
  ASSERT_TRUE(d.Step());
  EXPECT_GT(d.engine.Stats().kv_usage, 0.0);
  // Not in flight: reported at once.
  auto e = d.engine.Abort(1);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->finish, FinishReason::kAbort);
  // In flight: reported by FinishStep.
  ASSERT_TRUE(d.engine.StartStep(d.now).has_value());
  EXPECT_FALSE(d.engine.Abort(2).has_value());
  StepResult r = d.engine.FinishStep();
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].id, 2u);
  EXPECT_EQ(r.events[0].finish, FinishReason::kAbort);
  EXPECT_TRUE(d.engine.idle());
  EXPECT_DOUBLE_EQ(d.engine.Stats().kv_usage, 0.0);
  EXPECT_FALSE(d.engine.Abort(99).has_value());
}

TEST(EngineTest, SubmitRejectsWhatVllmRejects) {
  Engine e(SmallConfig());
  auto st = e.Submit(Spec(1, Prompt(250, 1), 10), kT0);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("maximum context length is 256 tokens. However, you requested 260"));
  EXPECT_EQ(e.Submit(Spec(2, {}, 10), kT0).code(), absl::StatusCode::kInvalidArgument);
  RequestSpec lora = Spec(3, Prompt(4, 1), 1);
  lora.lora = "x";
  EXPECT_EQ(e.Submit(lora, kT0).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(e.Submit(Spec(4, Prompt(4, 1), 1), kT0).ok());
  EXPECT_EQ(e.Submit(Spec(4, Prompt(4, 1), 1), kT0).code(), absl::StatusCode::kAlreadyExists);
}

TEST(EngineTest, ConfigValidationNamesTheField) {
  EngineConfig c;
  c.num_gpu_blocks = 10;
  auto st = ValidateEngineConfig(c);
  EXPECT_THAT(std::string(st.message()), HasSubstr("max_model_len"));
  c = EngineConfig();
  c.max_num_seqs = 0;
  EXPECT_THAT(std::string(ValidateEngineConfig(c).message()), HasSubstr("max_num_seqs"));
  EXPECT_TRUE(ValidateEngineConfig(EngineConfig()).ok());
}

}  // namespace
}  // namespace epp::sim
