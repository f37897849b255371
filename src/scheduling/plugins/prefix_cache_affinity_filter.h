// prefix-cache-affinity-filter (GIE latency-predictor family, llm-d): keeps a request on the
// endpoints that already hold most of its prompt ("sticky" endpoints), unless waiting for them
// would cost too much time to first token, so that prefix affinity cannot pile a hot prefix onto
// one overloaded endpoint.
//
// Inputs: approx-prefix-cache-producer's PrefixMatchInfo and inflight-load-producer's
// InflightLoadInfo (each created when the config lacks it). Without match data no endpoint is
// sticky; without load data every endpoint reads as idle.
//
// Per request, over the candidates:
//   1. With probability explorationProbability: all candidates (exploration).
//   2. sticky = the candidates whose match fraction (matched blocks / prompt blocks; 0 for a
//      prompt shorter than one block) is >= affinityThreshold. When none (or every candidate) is
//      sticky: all candidates.
//   3. TTFT(e) = in-flight prompt tokens(e) / peakPrefillThroughput × 1000 ms (the request's own
//      prompt is not counted, as in the reference). When min TTFT over the sticky candidates
//      exceeds min TTFT over the others by more than maxTTFTPenaltyMs: all candidates
//      (stickiness broken; the scorers decide).
//   4. Otherwise: the sticky candidates, in their order.
// It never empties a non-empty list.
//
// Parameters:
//   affinityThreshold (number, 0.80, in (0, 1]);
//   explorationProbability (number, 0.01, in [0, 1]);
//   maxTTFTPenaltyMs (number, 5000, >= 0);
//   peakPrefillThroughput (number, 15928, > 0): prompt tokens per second one endpoint prefills
//     (llm-d's calibration for Qwen 32B on 2×H100; measure it for other models and hardware);
//   inFlightLoadProducerName (string): accepted for llm-d configs and ignored (there is one
//     in-flight producer).
//
// Thread-safe (stateless; exploration draws from a per-thread generator).
#ifndef EPP_SCHEDULING_PLUGINS_PREFIX_CACHE_AFFINITY_FILTER_H_
#define EPP_SCHEDULING_PLUGINS_PREFIX_CACHE_AFFINITY_FILTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduling/framework.h"

namespace epp::scheduling {

inline constexpr std::string_view kPrefixCacheAffinityFilterType = "prefix-cache-affinity-filter";

struct PrefixCacheAffinityParams {
  double affinity_threshold = 0.80;
  double exploration_probability = 0.01;
  double max_ttft_penalty_ms = 5000;
  double peak_prefill_throughput = 15928;  // tokens per second
};

class PrefixCacheAffinityFilter : public Filter, public ProducerConsumer {
 public:
  PrefixCacheAffinityFilter(std::string name, PrefixCacheAffinityParams params);
  std::string_view Type() const override { return kPrefixCacheAffinityFilterType; }
  std::vector<EndpointRef> FilterEndpoints(CycleState& state, const Request& request,
                                           std::span<const EndpointRef> candidates) override;
  std::vector<RequiredProducer> RequiredProducers() const override;
  const PrefixCacheAffinityParams& params() const { return params_; }
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  PrefixCacheAffinityParams params_;
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_PREFIX_CACHE_AFFINITY_FILTER_H_
