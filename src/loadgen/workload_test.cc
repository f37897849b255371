#include "loadgen/workload.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "simdjson.h"
#include "xxhash.h"

namespace epp::loadgen {
namespace {

using ::testing::HasSubstr;

// A fingerprint of a whole workload: every field and the completion body of every request.
uint64_t Fingerprint(const std::vector<WorkRequest>& v) {
  std::string s;
  for (const WorkRequest& r : v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g|", r.arrival_s);
    s += buf;
    s += r.model + "|" + r.prompt + "|" + std::to_string(r.max_tokens) + "|" +
         std::to_string(r.group) + "|" + CompletionBody(r, false) + "\n";
  }
  return XXH64(s.data(), s.size(), 0);
}

// The workloads clustersim ran before they moved here (values computed with the old
// sim/cluster/workload.cc): moving them must not change clustersim's results.
TEST(WorkloadTest, ClusterWorkloadsAreTheOnesClustersimAlwaysRan) {
  struct Golden {
    bool poisson;
    uint64_t seed;
    uint64_t shared_prefix, multi_lora_15, multi_lora_4, no_sharing;
    size_t count;
  };
  const Golden kGolden[] = {
      {true, 1, 0xa264b9a4484d5c8eull, 0x516803e30e05b88dull, 0x47418f6b4b6dfe68ull,
       0x21e4aef123d2d5a0ull, 235},
      {true, 42, 0xb43d0285b09d59a1ull, 0xae21f88941a9b71eull, 0x54269f2da6a625c7ull,
       0xcb56ef1d5f4ace2bull, 237},
      {false, 1, 0xf8451ffe59d7de7eull, 0x7313559d60f1fbc6ull, 0x168267e89cf3c5aaull,
       0xb234818b59e7a3e8ull, 210},
      {false, 42, 0x5142900c55f082feull, 0xfc52c71c6cd51f39ull, 0x8f68b3114ab2238dull,
       0x78aa4429f88c6a75ull, 210},
  };
  for (const Golden& g : kGolden) {
    Arrivals a;
    a.rate = 7;
    a.seconds = 30;
    a.poisson = g.poisson;
    a.seed = g.seed;
    SharedPrefixSpec sp;
    sp.groups = 10;
    sp.prompts_per_group = 4;
    sp.system_tokens = 50;
    sp.question_tokens = 20;
    sp.output_tokens = 9;
    MultiLoraSpec ml;
    ml.prompt_tokens = 30;
    MultiLoraSpec ml4;
    ml4.adapters = 4;
    ml4.prompt_tokens = 10;
    auto shared = SharedPrefixWorkload(sp, a);
    EXPECT_EQ(shared.size(), g.count);
    EXPECT_EQ(Fingerprint(shared), g.shared_prefix) << g.poisson << " " << g.seed;
    EXPECT_EQ(Fingerprint(MultiLoraWorkload(ml, a)), g.multi_lora_15) << g.seed;
    EXPECT_EQ(Fingerprint(MultiLoraWorkload(ml4, a)), g.multi_lora_4) << g.seed;
    EXPECT_EQ(Fingerprint(NoSharingWorkload(NoSharingSpec{}, a)), g.no_sharing) << g.seed;
  }
  EXPECT_EQ(SyntheticText(5, 3), " rqo was qtf");
}

std::vector<WorkloadSpec> AllSpecs() {
  SharedPrefixSpec sp;
  sp.groups = 4;
  sp.prompts_per_group = 3;
  sp.system_tokens = 40;
  sp.question_tokens = 8;
  sp.output_tokens = 5;
  MultiLoraSpec ml;
  ml.prompt_tokens = 16;
  NoSharingSpec ns;
  LongPromptSpec lp;
  lp.prompt_tokens = 1000;
  return {sp, ml, ns, lp};
}

std::vector<WorkRequest> Draw(const WorkloadSpec& spec, uint64_t seed, int n) {
  auto gen = MakeGenerator(spec, seed, std::mt19937_64(seed));
  std::vector<WorkRequest> out;
  for (int i = 0; i < n; ++i) out.push_back(gen->Next());
  return out;
}

TEST(WorkloadTest, TheSameSeedGivesTheSameRequestsAndAnotherSeedOthers) {
  for (const WorkloadSpec& spec : AllSpecs()) {
    auto a = Draw(spec, 7, 50), b = Draw(spec, 7, 50), c = Draw(spec, 8, 50);
    EXPECT_EQ(Fingerprint(a), Fingerprint(b)) << spec.index();
    EXPECT_NE(Fingerprint(a), Fingerprint(c)) << spec.index();
  }
}

TEST(WorkloadTest, AnOpenLoopPlanIsTheBatchWorkload) {
  Arrivals a;
  a.rate = 50;
  a.seconds = std::numeric_limits<double>::infinity();
  a.max_requests = 300;
  a.seed = 3;
  for (const WorkloadSpec& spec : AllSpecs()) {
    OpenLoopPlan plan = PlanOpenLoop(spec, a);
    ASSERT_EQ(plan.arrivals.size(), 300u);
    std::vector<WorkRequest> lazily;
    for (double t : plan.arrivals) {
      lazily.push_back(plan.requests->Next());
      lazily.back().arrival_s = t;
    }
    EXPECT_EQ(Fingerprint(lazily), Fingerprint(Workload(spec, a))) << spec.index();
  }
}

TEST(ArrivalsTest, PoissonGapsAreExponentialWithMeanOneOverRate) {
  Arrivals a;
  a.rate = 40;
  a.seconds = std::numeric_limits<double>::infinity();
  a.max_requests = 200'000;
  a.seed = 11;
  std::mt19937_64 rng(a.seed);
  std::vector<double> t = ArrivalTimes(a, rng);
  ASSERT_EQ(t.size(), 200'000u);
  double sum = 0, sum_sq = 0;
  double prev = 0;
  int64_t below_mean = 0;
  for (double x : t) {
    double gap = x - prev;
    ASSERT_GE(gap, 0);
    prev = x;
    sum += gap;
    sum_sq += gap * gap;
    if (gap < 1 / a.rate) ++below_mean;
  }
  double n = static_cast<double>(t.size());
  double mean = sum / n;
  double sd = std::sqrt(sum_sq / n - mean * mean);
  // The mean's standard error is 1/(rate·√n) ≈ 0.22% of the mean: 1% is over 4 standard errors.
  EXPECT_NEAR(mean, 1 / a.rate, 0.01 / a.rate);
  EXPECT_NEAR(sd / mean, 1.0, 0.02);  // exponential: coefficient of variation 1
  // P(gap < mean) = 1 − 1/e ≈ 0.632.
  EXPECT_NEAR(below_mean / n, 1 - std::exp(-1.0), 0.005);
}

TEST(ArrivalsTest, ConstantArrivalsAreEvenlySpacedFromZero) {
  Arrivals a;
  a.rate = 4;
  a.seconds = 2;
  a.poisson = false;
  std::mt19937_64 rng(1), untouched(1);
  EXPECT_EQ(ArrivalTimes(a, rng), (std::vector<double>{0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(rng(), untouched());  // constant arrivals draw nothing
}

TEST(ArrivalsTest, RunsEndAtTheDurationOrTheRequestLimit) {
  Arrivals a;
  a.rate = 100;
  a.seconds = 1;
  std::mt19937_64 rng(1);
  auto by_time = ArrivalTimes(a, rng);
  EXPECT_GT(by_time.size(), 50u);
  EXPECT_LT(by_time.back(), 1.0);
  a.max_requests = 10;
  EXPECT_EQ(ArrivalTimes(a, rng).size(), 10u);
}

TEST(WorkloadTest, SharedPrefixRequestsOfAGroupShareTheSystemPrompt) {
  SharedPrefixSpec s;
  s.groups = 3;
  s.prompts_per_group = 2;
  s.system_tokens = 100;
  s.question_tokens = 10;
  s.output_tokens = 7;
  std::map<int, std::string> system_of;
  std::set<std::string> prompts;
  for (const WorkRequest& r : Draw(s, 5, 200)) {
    ASSERT_GE(r.group, 0);
    ASSERT_LT(r.group, 3);
    EXPECT_EQ(r.prompt.size(), 4u * 110);
    EXPECT_EQ(r.max_tokens, 7);
    auto [it, fresh] = system_of.emplace(r.group, r.prompt.substr(0, 400));
    if (!fresh) {
      EXPECT_EQ(it->second, r.prompt.substr(0, 400));
    }
    prompts.insert(r.prompt);
  }
  EXPECT_EQ(system_of.size(), 3u);
  EXPECT_EQ(prompts.size(), 6u);  // the pool: groups × prompts per group
}

TEST(WorkloadTest, MultiLoraFollowsTheTierWeights) {
  MultiLoraSpec s;  // 15 adapters, 60/30/10
  s.prompt_tokens = 2;
  std::vector<int> per_tier(3);
  const int n = 30'000;
  for (const WorkRequest& r : Draw(s, 9, n)) {
    ASSERT_TRUE(r.model.starts_with("adapter-")) << r.model;
    int k = std::stoi(r.model.substr(8));
    ASSERT_GE(k, 0);
    ASSERT_LT(k, 15);
    ++per_tier[static_cast<size_t>(k / 5)];
  }
  EXPECT_NEAR(per_tier[0] / double{n}, 0.6, 0.015);
  EXPECT_NEAR(per_tier[1] / double{n}, 0.3, 0.015);
  EXPECT_NEAR(per_tier[2] / double{n}, 0.1, 0.015);
}

TEST(WorkloadTest, ShareGptLengthsAreLogNormalAndClipped) {
  NoSharingSpec s;
  s.max_prompt_tokens = 2000;
  std::vector<double> prompt, output;
  for (const WorkRequest& r : Draw(s, 2, 20'000)) {
    ASSERT_EQ(r.prompt.size() % 4, 0u);
    int tokens = static_cast<int>(r.prompt.size() / 4);
    ASSERT_GE(tokens, 4);
    ASSERT_LE(tokens, 2000);
    ASSERT_GE(r.max_tokens, 1);
    ASSERT_LE(r.max_tokens, 2048);
    prompt.push_back(tokens);
    output.push_back(r.max_tokens);
  }
  std::sort(prompt.begin(), prompt.end());
  std::sort(output.begin(), output.end());
  // Medians (truncation to whole tokens lowers them by up to one).
  EXPECT_NEAR(prompt[prompt.size() / 2], 300, 15);
  EXPECT_NEAR(output[output.size() / 2], 200, 10);
  EXPECT_EQ(prompt.back(), 2000);  // the clip is reached: sigma 1 has a long tail
}

TEST(WorkloadTest, LongPromptsAre220KbAndEachItsOwn) {
  auto requests = Draw(LongPromptSpec{}, 1, 3);
  for (const WorkRequest& r : requests) EXPECT_EQ(r.prompt.size(), 220'000u);
  EXPECT_NE(requests[0].prompt.substr(0, 64), requests[1].prompt.substr(0, 64));
}

TEST(WorkloadTest, BodiesAreJsonWithTheStreamingFields) {
  WorkRequest r;
  r.model = "we\"ird";
  r.prompt = " abc def";
  r.max_tokens = 12;
  simdjson::dom::parser parser;
  for (bool chat : {false, true}) {
    std::string body = chat ? ChatBody(r, true) : CompletionBody(r, true);
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(body).get(doc), simdjson::SUCCESS) << body;
    std::string_view model;
    ASSERT_EQ(doc["model"].get(model), simdjson::SUCCESS);
    EXPECT_EQ(model, "we\"ird");
    EXPECT_EQ(int64_t(doc["max_tokens"]), 12);
    EXPECT_EQ(bool(doc["stream"]), true);
    EXPECT_EQ(bool(doc["ignore_eos"]), true);
    EXPECT_EQ(bool(doc["stream_options"]["include_usage"]), true);
    if (chat) {
      EXPECT_EQ(std::string_view(doc["messages"].at(0)["content"]), " abc def");
    } else {
      EXPECT_EQ(std::string_view(doc["prompt"]), " abc def");
    }
  }
  EXPECT_THAT(CompletionBody(r, false), ::testing::Not(HasSubstr("stream")));
}

}  // namespace
}  // namespace epp::loadgen
