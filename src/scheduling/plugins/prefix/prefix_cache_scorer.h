// prefix-cache-scorer: scores each candidate by how much of the prompt it is believed to hold in
// its prefix cache, from approx-prefix-cache-producer's PrefixMatchInfo. The producer's
// parameters are given here, as in the reference, and the producer is created with them when
// the config does not declare one.
//
// Parameters: those of approx-prefix-cache-producer, plus
//   mode (string, "fraction"):
//     "fraction"   — the reference: matched blocks / prompt blocks (0 for prompts shorter than a
//                    block).
//     "load-aware" — ours: weighs the prefill a cache hit saves against the queue the endpoint
//                    already has, so affinity never piles work onto one hot endpoint (the
//                    "death spiral" of cache-greedy routers). Per candidate e, with P the
//                    prompt's tokens, M(e) the matched tokens and Q(e) its waiting queue:
//                      cost(e) = queueWeight × Q(e) × P + (P − M(e)) + one block
//                      score(e) = min over candidates of cost / cost(e)
//                    An idle endpoint holding the whole prompt scores 1; each request waiting
//                    there costs as much as recomputing the prompt elsewhere.
//   queueWeight (double, 1.0, >= 0): load-aware mode only.
// Thread-safe (stateless).
#ifndef EPP_SCHEDULING_PLUGINS_PREFIX_PREFIX_CACHE_SCORER_H_
#define EPP_SCHEDULING_PLUGINS_PREFIX_PREFIX_CACHE_SCORER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduling/framework.h"

namespace epp::scheduling {

inline constexpr std::string_view kPrefixCacheScorerType = "prefix-cache-scorer";

class PrefixCacheScorer : public Scorer, public ProducerConsumer {
 public:
  enum class Mode { kFraction, kLoadAware };
  PrefixCacheScorer(std::string name, Mode mode, double queue_weight, YAML::Node producer_params);
  std::string_view Type() const override { return kPrefixCacheScorerType; }
  void Score(CycleState& state, const Request& request, std::span<const EndpointRef> candidates,
             std::span<double> scores) override;
  std::vector<RequiredProducer> RequiredProducers() const override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  Mode mode_;
  double queue_weight_;
  YAML::Node producer_params_;
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_PREFIX_PREFIX_CACHE_SCORER_H_
