#include "sim/cluster/workload.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "common/strings.h"

namespace epp::sim {
namespace {

// Arrival times for the whole run.
std::vector<double> ArrivalTimes(const Arrivals& a, std::mt19937_64& rng) {
  std::vector<double> out;
  std::exponential_distribution<double> gap(a.rate);
  double t = 0;
  for (size_t i = 0;; ++i) {
    t = a.poisson ? t + gap(rng) : static_cast<double>(i) / a.rate;
    if (t >= a.seconds) break;
    out.push_back(t);
  }
  return out;
}

}  // namespace

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

std::vector<WorkRequest> SharedPrefixWorkload(const SharedPrefixSpec& s, const Arrivals& a) {
  std::mt19937_64 rng(a.seed);
  std::vector<std::string> systems;
  for (int g = 0; g < s.groups; ++g) {
    systems.push_back(
        SyntheticText(a.seed * 1'000'003 + static_cast<uint64_t>(g), s.system_tokens));
  }
  std::uniform_int_distribution<int> pick(0, s.groups * s.prompts_per_group - 1);
  std::vector<WorkRequest> out;
  for (double t : ArrivalTimes(a, rng)) {
    int entry = pick(rng);
    int g = entry / s.prompts_per_group;
    WorkRequest r;
    r.arrival_s = t;
    r.model = s.model;
    r.group = g;
    r.prompt = systems[static_cast<size_t>(g)] +
               SyntheticText(a.seed * 7'919 + 1'000'000'007ull * static_cast<uint64_t>(entry + 1),
                             s.question_tokens);
    r.max_tokens = s.output_tokens;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<WorkRequest> MultiLoraWorkload(const MultiLoraSpec& s, const Arrivals& a) {
  std::mt19937_64 rng(a.seed);
  int tier = std::max(1, s.adapters / 3);
  std::discrete_distribution<int> tiers({60, 30, 10});
  std::vector<WorkRequest> out;
  uint64_t n = 0;
  for (double t : ArrivalTimes(a, rng)) {
    int k = tiers(rng);
    int lo = std::min(k * tier, s.adapters - 1);
    int hi = k == 2 ? s.adapters - 1 : std::min((k + 1) * tier - 1, s.adapters - 1);
    int adapter = std::uniform_int_distribution<int>(lo, hi)(rng);
    WorkRequest r;
    r.arrival_s = t;
    r.model = StrCat(s.adapter_prefix, adapter);
    r.prompt = SyntheticText(a.seed * 31 + ++n, s.prompt_tokens);
    r.max_tokens = s.output_tokens;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<WorkRequest> NoSharingWorkload(const NoSharingSpec& s, const Arrivals& a) {
  std::mt19937_64 rng(a.seed);
  std::lognormal_distribution<double> in(std::log(s.prompt_tokens_median), 1.0);
  std::lognormal_distribution<double> outd(std::log(s.output_tokens_median), 0.8);
  std::vector<WorkRequest> out;
  uint64_t n = 0;
  for (double t : ArrivalTimes(a, rng)) {
    WorkRequest r;
    r.arrival_s = t;
    r.model = s.model;
    r.prompt = SyntheticText(a.seed * 131 + ++n, std::clamp(static_cast<int>(in(rng)), 4, 4096));
    r.max_tokens = std::clamp(static_cast<int>(outd(rng)), 1, 2048);
    out.push_back(std::move(r));
  }
  return out;
}

std::string CompletionBody(const WorkRequest& r, bool stream) {
  return StrCat("{\"model\":\"", r.model, "\",\"prompt\":\"", r.prompt,
                "\",\"max_tokens\":", r.max_tokens, ",\"ignore_eos\":true",
                stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "", "}");
}

}  // namespace epp::sim
