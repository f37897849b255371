#include "scheduling/plugins/prefix/prefix_cache_scorer.h"

#include <algorithm>

#include "common/status_macros.h"
#include "scheduling/plugins/cycle_data.h"
#include "scheduling/plugins/prefix/approx_prefix_producer.h"

namespace epp::scheduling {

PrefixCacheScorer::PrefixCacheScorer(std::string name, Mode mode, double queue_weight,
                                     YAML::Node producer_params)
    : Scorer(std::move(name)),
      mode_(mode),
      queue_weight_(queue_weight),
      producer_params_(std::move(producer_params)) {}

void PrefixCacheScorer::Score(CycleState& state, const Request&,
                              std::span<const EndpointRef> candidates, std::span<double> scores) {
  const auto* info = state.Read<PrefixMatchInfo>(kPrefixMatchKey);
  if (info == nullptr || info->total_blocks == 0) {
    std::fill(scores.begin(), scores.end(), 0.0);
    return;
  }
  if (mode_ == Mode::kFraction) {
    for (size_t i = 0; i < candidates.size(); ++i) scores[i] = info->Fraction(candidates[i]);
    return;
  }
  const double block = info->block_tokens;
  const double prompt = info->total_blocks * block;
  std::vector<double> cost(candidates.size());
  double min_cost = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    double matched = std::min(prompt, info->Matched(candidates[i]) * block);
    double queue = static_cast<double>(candidates[i]->metrics->Load()->waiting_queue_size);
    cost[i] = queue_weight_ * std::max(queue, 0.0) * prompt + (prompt - matched) + block;
    min_cost = i == 0 ? cost[i] : std::min(min_cost, cost[i]);
  }
  for (size_t i = 0; i < candidates.size(); ++i) scores[i] = min_cost / cost[i];
}

std::vector<RequiredProducer> PrefixCacheScorer::RequiredProducers() const {
  return {{std::string(kApproxPrefixCacheProducerType), producer_params_}};
}

absl::StatusOr<std::unique_ptr<Plugin>> PrefixCacheScorer::Create(const std::string& name,
                                                                  const YAML::Node& params) {
  static const std::string kOwn[] = {"mode", "queueWeight"};
  // The producer's parameters are validated here so a typo fails at this plugin's name.
  RETURN_IF_ERROR(ParsePrefixParams(params, kOwn).status());
  ParamReader own(params);
  std::string mode = own.String("mode", "fraction");
  double queue_weight = own.Double("queueWeight", 1.0);
  Mode m;
  if (mode == "fraction") {
    m = Mode::kFraction;
  } else if (mode == "load-aware") {
    m = Mode::kLoadAware;
  } else {
    return absl::InvalidArgumentError("parameter \"mode\" must be \"fraction\" or \"load-aware\"");
  }
  if (!(queue_weight >= 0)) {
    return absl::InvalidArgumentError("parameter \"queueWeight\" must be >= 0");
  }
  YAML::Node producer(YAML::NodeType::Map);
  if (params.IsMap()) {
    for (const auto& kv : params) {
      std::string key = kv.first.as<std::string>();
      if (key != "mode" && key != "queueWeight") producer[key] = kv.second;
    }
  }
  return std::make_unique<PrefixCacheScorer>(name, m, queue_weight, producer);
}

}  // namespace epp::scheduling
