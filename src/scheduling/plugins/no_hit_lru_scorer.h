// no-hit-lru-scorer (llm-d): spreads "cold" requests — those no candidate holds any prefix of —
// over the endpoints, so new prefixes (and the KV-cache growth they cause) do not all land on
// the same endpoint.
//
// Input: approx-prefix-cache-producer's PrefixMatchInfo (the producer is created when the config
// lacks it). A request is cold when that data is absent or no endpoint of the cycle has a
// matched block (prompts shorter than one block are cold); otherwise it is warm. The decision
// uses every endpoint the producer saw, so a request whose only warm endpoint was filtered out
// still counts as warm.
//
// Scores:
//   warm: 0.5 for every candidate (neutral: leaves cache locality to the other scorers).
//   cold: candidates are ranked — endpoints that never served a cold request (or were forgotten)
//         first, sharing rank 0, then the rest from least to most recently used for a cold
//         request — and score 1 − rank / (n − 1) for n candidates: never used ⇒ 1.0, the most
//         recently used ⇒ 0. A single candidate scores 1.0.
// After the pick (PreRequest) a cold request marks the primary endpoint as the most recently
// used; warm requests change nothing.
//
// Parameters (llm-d's):
//   lruSize (int, 1024, > 0): endpoints remembered; the least recently used is forgotten
//     beyond it (and then counts as never used).
//   prefixPluginName, prefixPluginType (string): accepted for llm-d configs and ignored; the
//     prefix data always comes from the cycle's PrefixMatchInfo.
//
// Thread-safe: one mutex around the recency table, held for a lookup per candidate or one
// update.
#ifndef EPP_SCHEDULING_PLUGINS_NO_HIT_LRU_SCORER_H_
#define EPP_SCHEDULING_PLUGINS_NO_HIT_LRU_SCORER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "scheduling/framework.h"
#include "scheduling/plugins/lru_map.h"

namespace epp::scheduling {

inline constexpr std::string_view kNoHitLruScorerType = "no-hit-lru-scorer";

// True when the cycle's PrefixMatchInfo is absent or shows no matched block on any endpoint.
bool IsColdRequest(const CycleState& state);

class NoHitLruScorer : public Scorer, public PreRequestHook, public ProducerConsumer {
 public:
  NoHitLruScorer(std::string name, size_t lru_size);
  std::string_view Type() const override { return kNoHitLruScorerType; }
  void Score(CycleState& state, const Request& request, std::span<const EndpointRef> candidates,
             std::span<double> scores) override;
  void PreRequest(CycleState& state, const Request& request,
                  const SchedulingResult& result) override;
  std::vector<RequiredProducer> RequiredProducers() const override;
  size_t remembered() const;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  mutable Mutex mu_;
  // Endpoint Key() → sequence number of its last cold request (higher = more recent).
  LruMap<uint64_t> last_cold_use_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_NO_HIT_LRU_SCORER_H_
