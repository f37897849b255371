#include "loadgen/workload.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/strings.h"

namespace epp::loadgen {
namespace {

// Every generator keeps its distributions for the whole stream: some (the normal behind the
// log-normal) carry a spare draw from one call to the next, so recreating them would change
// the sequence.

class SharedPrefixGenerator : public RequestGenerator {
 public:
  SharedPrefixGenerator(const SharedPrefixSpec& s, uint64_t seed, std::mt19937_64 rng)
      : spec_(s), seed_(seed), rng_(std::move(rng)), pick_(0, s.groups * s.prompts_per_group - 1) {
    for (int g = 0; g < s.groups; ++g) {
      systems_.push_back(
          SyntheticText(seed * 1'000'003 + static_cast<uint64_t>(g), s.system_tokens));
    }
  }

  WorkRequest Next() override {
    int entry = pick_(rng_);
    int g = entry / spec_.prompts_per_group;
    WorkRequest r;
    r.model = spec_.model;
    r.group = g;
    r.prompt = systems_[static_cast<size_t>(g)] +
               SyntheticText(seed_ * 7'919 + 1'000'000'007ull * static_cast<uint64_t>(entry + 1),
                             spec_.question_tokens);
    r.max_tokens = spec_.output_tokens;
    return r;
  }

 private:
  SharedPrefixSpec spec_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<int> pick_;
  std::vector<std::string> systems_;
};

class MultiLoraGenerator : public RequestGenerator {
 public:
  MultiLoraGenerator(const MultiLoraSpec& s, uint64_t seed, std::mt19937_64 rng)
      : spec_(s),
        seed_(seed),
        rng_(std::move(rng)),
        tiers_(s.tier_weights.begin(), s.tier_weights.end()),
        tier_size_(std::max(1, s.adapters / std::max(1, static_cast<int>(s.tier_weights.size())))) {
  }

  WorkRequest Next() override {
    const int last_tier = static_cast<int>(spec_.tier_weights.size()) - 1;
    int k = tiers_(rng_);
    int lo = std::min(k * tier_size_, spec_.adapters - 1);
    int hi = k == last_tier ? spec_.adapters - 1
                            : std::min((k + 1) * tier_size_ - 1, spec_.adapters - 1);
    int adapter = std::uniform_int_distribution<int>(lo, hi)(rng_);
    WorkRequest r;
    r.model = StrCat(spec_.adapter_prefix, adapter);
    r.prompt = SyntheticText(seed_ * 31 + ++n_, spec_.prompt_tokens);
    r.max_tokens = spec_.output_tokens;
    return r;
  }

 private:
  MultiLoraSpec spec_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::discrete_distribution<int> tiers_;
  int tier_size_;
  uint64_t n_ = 0;
};

class NoSharingGenerator : public RequestGenerator {
 public:
  NoSharingGenerator(const NoSharingSpec& s, uint64_t seed, std::mt19937_64 rng)
      : spec_(s),
        seed_(seed),
        rng_(std::move(rng)),
        in_(std::log(s.prompt_tokens_median), s.prompt_tokens_sigma),
        out_(std::log(s.output_tokens_median), s.output_tokens_sigma) {}

  WorkRequest Next() override {
    // Clamped before the conversion to int, which a far tail would overflow.
    double prompt = std::clamp(in_(rng_), static_cast<double>(spec_.min_prompt_tokens),
                               static_cast<double>(spec_.max_prompt_tokens));
    double output = std::clamp(out_(rng_), static_cast<double>(spec_.min_output_tokens),
                               static_cast<double>(spec_.max_output_tokens));
    WorkRequest r;
    r.model = spec_.model;
    r.prompt = SyntheticText(seed_ * 131 + ++n_, static_cast<int>(prompt));
    r.max_tokens = static_cast<int>(output);
    return r;
  }

 private:
  NoSharingSpec spec_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::lognormal_distribution<double> in_;
  std::lognormal_distribution<double> out_;
  uint64_t n_ = 0;
};

class LongPromptGenerator : public RequestGenerator {
 public:
  LongPromptGenerator(const LongPromptSpec& s, uint64_t seed) : spec_(s), seed_(seed) {}

  WorkRequest Next() override {
    WorkRequest r;
    r.model = spec_.model;
    r.prompt = SyntheticText(seed_ * 1'000'033 + ++n_, spec_.prompt_tokens);
    r.max_tokens = spec_.output_tokens;
    return r;
  }

 private:
  LongPromptSpec spec_;
  uint64_t seed_;
  uint64_t n_ = 0;
};

}  // namespace

std::vector<double> ArrivalTimes(const Arrivals& a, std::mt19937_64& rng) {
  std::vector<double> out;
  std::exponential_distribution<double> gap(a.rate);
  double t = 0;
  for (size_t i = 0;; ++i) {
    if (a.max_requests > 0 && out.size() >= static_cast<size_t>(a.max_requests)) break;
    t = a.poisson ? t + gap(rng) : static_cast<double>(i) / a.rate;
    if (t >= a.seconds) break;
    out.push_back(t);
  }
  return out;
}

std::string SyntheticText(uint64_t seed, int tokens) {
  static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyz";
  std::string out;
  out.reserve(static_cast<size_t>(tokens) * 4);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  for (int i = 0; i < tokens; ++i) {
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    out.push_back(' ');
    for (int c = 0; c < 3; ++c) out.push_back(kLetters[(x >> (8 * c)) % 26]);
  }
  return out;
}

std::unique_ptr<RequestGenerator> MakeGenerator(const WorkloadSpec& spec, uint64_t seed,
                                                std::mt19937_64 rng) {
  struct Make {
    uint64_t seed;
    std::mt19937_64& rng;
    std::unique_ptr<RequestGenerator> operator()(const SharedPrefixSpec& s) {
      return std::make_unique<SharedPrefixGenerator>(s, seed, std::move(rng));
    }
    std::unique_ptr<RequestGenerator> operator()(const MultiLoraSpec& s) {
      return std::make_unique<MultiLoraGenerator>(s, seed, std::move(rng));
    }
    std::unique_ptr<RequestGenerator> operator()(const NoSharingSpec& s) {
      return std::make_unique<NoSharingGenerator>(s, seed, std::move(rng));
    }
    std::unique_ptr<RequestGenerator> operator()(const LongPromptSpec& s) {
      return std::make_unique<LongPromptGenerator>(s, seed);
    }
  };
  return std::visit(Make{seed, rng}, spec);
}

OpenLoopPlan PlanOpenLoop(const WorkloadSpec& spec, const Arrivals& a) {
  std::mt19937_64 rng(a.seed);
  OpenLoopPlan plan;
  plan.arrivals = ArrivalTimes(a, rng);
  plan.requests = MakeGenerator(spec, a.seed, rng);
  return plan;
}

std::vector<WorkRequest> Workload(const WorkloadSpec& spec, const Arrivals& a) {
  OpenLoopPlan plan = PlanOpenLoop(spec, a);
  std::vector<WorkRequest> out;
  out.reserve(plan.arrivals.size());
  for (double t : plan.arrivals) {
    WorkRequest r = plan.requests->Next();
    r.arrival_s = t;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<WorkRequest> SharedPrefixWorkload(const SharedPrefixSpec& spec, const Arrivals& a) {
  return Workload(spec, a);
}

std::vector<WorkRequest> MultiLoraWorkload(const MultiLoraSpec& spec, const Arrivals& a) {
  return Workload(spec, a);
}

std::vector<WorkRequest> NoSharingWorkload(const NoSharingSpec& spec, const Arrivals& a) {
  return Workload(spec, a);
}

std::string CompletionBody(const WorkRequest& r, bool stream) {
  return StrCat("{\"model\":\"", JsonEscape(r.model), "\",\"prompt\":\"", r.prompt,
                "\",\"max_tokens\":", r.max_tokens, ",\"ignore_eos\":true",
                stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "", "}");
}

std::string ChatBody(const WorkRequest& r, bool stream) {
  return StrCat("{\"model\":\"", JsonEscape(r.model),
                "\",\"messages\":[{\"role\":\"user\",\"content\":\"", r.prompt,
                "\"}],\"max_tokens\":", r.max_tokens, ",\"ignore_eos\":true",
                stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "", "}");
}

}  // namespace epp::loadgen
