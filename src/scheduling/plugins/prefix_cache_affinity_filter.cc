#include "scheduling/plugins/prefix_cache_affinity_filter.h"

#include <algorithm>
#include <limits>
#include <random>

#include "common/status_macros.h"
#include "scheduling/plugins/cycle_data.h"
#include "scheduling/plugins/inflight_load_producer.h"
#include "scheduling/plugins/prefix/approx_prefix_producer.h"
#include "scheduling/plugins/thread_rng.h"

namespace epp::scheduling {
namespace {}  // namespace

PrefixCacheAffinityFilter::PrefixCacheAffinityFilter(std::string name,
                                                     PrefixCacheAffinityParams params)
    : Filter(std::move(name)), params_(params) {}

std::vector<EndpointRef> PrefixCacheAffinityFilter::FilterEndpoints(
    CycleState& state, const Request&, std::span<const EndpointRef> candidates) {
  std::vector<EndpointRef> all(candidates.begin(), candidates.end());
  if (candidates.empty()) return all;
  if (params_.exploration_probability > 0) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    if (u(ThreadRng()) < params_.exploration_probability) return all;
  }
  const auto* match = state.Read<PrefixMatchInfo>(kPrefixMatchKey);
  if (match == nullptr) return all;
  const auto* load = state.Read<InflightLoadInfo>(kInflightLoadKey);

  constexpr double kInf = std::numeric_limits<double>::infinity();
  double best_sticky = kInf, best_other = kInf;
  std::vector<EndpointRef> sticky;
  for (EndpointRef e : candidates) {
    double tokens = load ? static_cast<double>(load->Of(e).tokens) : 0.0;
    double ttft_ms = tokens / params_.peak_prefill_throughput * 1000.0;
    if (match->Fraction(e) >= params_.affinity_threshold) {
      sticky.push_back(e);
      best_sticky = std::min(best_sticky, ttft_ms);
    } else {
      best_other = std::min(best_other, ttft_ms);
    }
  }
  if (sticky.empty() || sticky.size() == candidates.size()) return all;
  if (best_sticky - best_other > params_.max_ttft_penalty_ms) return all;
  return sticky;
}

std::vector<RequiredProducer> PrefixCacheAffinityFilter::RequiredProducers() const {
  return {{std::string(kApproxPrefixCacheProducerType), YAML::Node()},
          {std::string(kInflightLoadProducerType), YAML::Node()}};
}

absl::StatusOr<std::unique_ptr<Plugin>> PrefixCacheAffinityFilter::Create(
    const std::string& name, const YAML::Node& params) {
  ParamReader reader(params);
  PrefixCacheAffinityParams p;
  p.affinity_threshold = reader.Double("affinityThreshold", p.affinity_threshold);
  p.exploration_probability = reader.Double("explorationProbability", p.exploration_probability);
  p.max_ttft_penalty_ms = reader.Double("maxTTFTPenaltyMs", p.max_ttft_penalty_ms);
  p.peak_prefill_throughput = reader.Double("peakPrefillThroughput", p.peak_prefill_throughput);
  (void)reader.String("inFlightLoadProducerName", "");  // accepted, unused (see the header)
  RETURN_IF_ERROR(reader.Finish());
  if (!(p.affinity_threshold > 0 && p.affinity_threshold <= 1)) {
    return absl::InvalidArgumentError("parameter \"affinityThreshold\" must be in (0, 1]");
  }
  if (!(p.exploration_probability >= 0 && p.exploration_probability <= 1)) {
    return absl::InvalidArgumentError("parameter \"explorationProbability\" must be in [0, 1]");
  }
  if (!(p.max_ttft_penalty_ms >= 0)) {
    return absl::InvalidArgumentError("parameter \"maxTTFTPenaltyMs\" must be >= 0");
  }
  if (!(p.peak_prefill_throughput > 0)) {
    return absl::InvalidArgumentError("parameter \"peakPrefillThroughput\" must be > 0");
  }
  return std::make_unique<PrefixCacheAffinityFilter>(name, p);
}

}  // namespace epp::scheduling
