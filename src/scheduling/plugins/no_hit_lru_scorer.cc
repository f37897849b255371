#include "scheduling/plugins/no_hit_lru_scorer.h"

#include <algorithm>
#include <vector>

#include "common/status_macros.h"
#include "scheduling/plugins/cycle_data.h"
#include "scheduling/plugins/prefix/approx_prefix_producer.h"

namespace epp::scheduling {

bool IsColdRequest(const CycleState& state) {
  const auto* info = state.Read<PrefixMatchInfo>(kPrefixMatchKey);
  if (info == nullptr || info->total_blocks == 0) return true;
  for (const auto& [endpoint, blocks] : info->matched_blocks) {
    if (blocks > 0) return false;
  }
  return true;
}

NoHitLruScorer::NoHitLruScorer(std::string name, size_t lru_size)
    : Scorer(std::move(name)), last_cold_use_(lru_size) {}

void NoHitLruScorer::Score(CycleState& state, const Request&,
                           std::span<const EndpointRef> candidates, std::span<double> scores) {
  const size_t n = candidates.size();
  if (n == 0) return;
  if (!IsColdRequest(state)) {
    std::fill(scores.begin(), scores.end(), 0.5);
    return;
  }
  // Sequence number of each candidate's last cold request; 0 = never (or forgotten).
  std::vector<uint64_t> seq(n, 0);
  std::vector<std::string> keys(n);  // built before locking: the lock covers lookups only
  for (size_t i = 0; i < n; ++i) keys[i] = candidates[i]->Key();
  {
    MutexLock lock(&mu_);
    for (size_t i = 0; i < n; ++i) {
      const uint64_t* s = last_cold_use_.Get(keys[i]);
      if (s != nullptr) seq[i] = *s;
    }
  }
  if (n == 1) {
    scores[0] = 1.0;
    return;
  }
  // Never-used candidates share rank 0; used ones follow, least recently used first.
  std::vector<size_t> used;
  size_t never = 0;
  for (size_t i = 0; i < n; ++i) {
    if (seq[i] == 0) {
      scores[i] = 1.0;
      ++never;
    } else {
      used.push_back(i);
    }
  }
  std::sort(used.begin(), used.end(), [&](size_t a, size_t b) { return seq[a] < seq[b]; });
  const double denom = static_cast<double>(n - 1);
  for (size_t j = 0; j < used.size(); ++j) {
    scores[used[j]] = 1.0 - static_cast<double>(never + j) / denom;
  }
}

void NoHitLruScorer::PreRequest(CycleState& state, const Request&, const SchedulingResult& result) {
  if (!IsColdRequest(state)) return;
  auto it = result.profile_results.find(result.primary_profile);
  if (it == result.profile_results.end() || it->second.target_endpoints.empty()) return;
  std::string key = it->second.target_endpoints.front()->Key();
  MutexLock lock(&mu_);
  last_cold_use_.Put(key, next_sequence_++);
}

std::vector<RequiredProducer> NoHitLruScorer::RequiredProducers() const {
  return {{std::string(kApproxPrefixCacheProducerType), YAML::Node()}};
}

size_t NoHitLruScorer::remembered() const {
  MutexLock lock(&mu_);
  return last_cold_use_.size();
}

absl::StatusOr<std::unique_ptr<Plugin>> NoHitLruScorer::Create(const std::string& name,
                                                               const YAML::Node& params) {
  ParamReader reader(params);
  int64_t lru_size = reader.Int("lruSize", 1024);
  (void)reader.String("prefixPluginName", "");  // accepted, unused (see the header)
  (void)reader.String("prefixPluginType", "");
  RETURN_IF_ERROR(reader.Finish());
  if (lru_size <= 0) return absl::InvalidArgumentError("parameter \"lruSize\" must be > 0");
  return std::make_unique<NoHitLruScorer>(name, static_cast<size_t>(lru_size));
}

}  // namespace epp::scheduling
