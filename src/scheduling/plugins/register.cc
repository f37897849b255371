#include "scheduling/plugins/register.h"

#include "scheduling/plugins/inflight_load_producer.h"
#include "scheduling/plugins/load_scorers.h"
#include "scheduling/plugins/lora_affinity_scorer.h"
#include "scheduling/plugins/no_hit_lru_scorer.h"
#include "scheduling/plugins/pickers.h"
#include "scheduling/plugins/prefix/approx_prefix_producer.h"
#include "scheduling/plugins/prefix/prefix_cache_scorer.h"
#include "scheduling/plugins/prefix_cache_affinity_filter.h"
#include "scheduling/plugins/saturation_detectors.h"
#include "scheduling/plugins/session_affinity.h"
#include "scheduling/plugins/single_profile_handler.h"

namespace epp::scheduling {

void RegisterSchedulingPlugins(PluginRegistry& r) {
  auto reg = [&r](std::string_view type, PluginFactory f) {
    r.Register(std::string(type), std::move(f));
  };
  reg(kMaxScorePickerType, MaxScorePicker::Create);
  reg(kRandomPickerType, RandomPicker::Create);
  reg(kWeightedRandomPickerType, WeightedRandomPicker::Create);
  reg(kSingleProfileHandlerType, SingleProfileHandler::Create);
  reg(kQueueScorerType, QueueScorer::Create);
  reg(kRunningRequestsSizeScorerType, RunningRequestsSizeScorer::Create);
  reg(kKvCacheUtilizationScorerType, KvCacheUtilizationScorer::Create);
  reg(kTokenLoadScorerType, TokenLoadScorer::Create);
  reg(kLoadAwareScorerType, LoadAwareScorer::Create);
  reg(kLoraAffinityScorerType, LoraAffinityScorer::Create);
  reg(kInflightLoadProducerType, InflightLoadProducer::Create);
  reg(kApproxPrefixCacheProducerType, ApproxPrefixCacheProducer::Create);
  reg(kPrefixCacheScorerType, PrefixCacheScorer::Create);
  reg(kUtilizationDetectorType, UtilizationDetector::Create);
  reg(kConcurrencyDetectorType, ConcurrencyDetector::Create);
  reg(kSessionAffinityScorerType, SessionAffinityScorer::Create);
  reg(kSessionAffinityFilterType, SessionAffinityFilter::Create);
  reg(kNoHitLruScorerType, NoHitLruScorer::Create);
  reg(kPrefixCacheAffinityFilterType, PrefixCacheAffinityFilter::Create);
}

}  // namespace epp::scheduling
