#include "scheduling/plugins/load_scorers.h"

#include <algorithm>

#include "common/status_macros.h"
#include "scheduling/plugins/cycle_data.h"
#include "scheduling/plugins/inflight_load_producer.h"

namespace epp::scheduling {
namespace {

absl::Status NoParams(const YAML::Node& params) {
  ParamReader reader(params);
  return reader.Finish();
}

}  // namespace

void ScoreLowerIsBetter(std::span<const double> values, std::span<double> scores) {
  if (values.empty()) return;
  auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  double min = *lo, max = *hi;
  for (size_t i = 0; i < values.size(); ++i) {
    scores[i] = max == min ? 1.0 : (max - values[i]) / (max - min);
  }
}

void QueueScorer::Score(CycleState&, const Request&, std::span<const EndpointRef> candidates,
                        std::span<double> scores) {
  std::vector<double> q(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    q[i] = static_cast<double>(candidates[i]->metrics->Load()->waiting_queue_size);
  }
  ScoreLowerIsBetter(q, scores);
}

absl::StatusOr<std::unique_ptr<Plugin>> QueueScorer::Create(const std::string& name,
                                                            const YAML::Node& params) {
  RETURN_IF_ERROR(NoParams(params));
  return std::make_unique<QueueScorer>(name);
}

void RunningRequestsSizeScorer::Score(CycleState&, const Request&,
                                      std::span<const EndpointRef> candidates,
                                      std::span<double> scores) {
  std::vector<double> r(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    r[i] = static_cast<double>(candidates[i]->metrics->Load()->running_requests_size);
  }
  ScoreLowerIsBetter(r, scores);
}

absl::StatusOr<std::unique_ptr<Plugin>> RunningRequestsSizeScorer::Create(
    const std::string& name, const YAML::Node& params) {
  RETURN_IF_ERROR(NoParams(params));
  return std::make_unique<RunningRequestsSizeScorer>(name);
}

void KvCacheUtilizationScorer::Score(CycleState&, const Request&,
                                     std::span<const EndpointRef> candidates,
                                     std::span<double> scores) {
  for (size_t i = 0; i < candidates.size(); ++i) {
    scores[i] = 1.0 - candidates[i]->metrics->Load()->kv_cache_usage_percent;
  }
}

absl::StatusOr<std::unique_ptr<Plugin>> KvCacheUtilizationScorer::Create(const std::string& name,
                                                                         const YAML::Node& params) {
  RETURN_IF_ERROR(NoParams(params));
  return std::make_unique<KvCacheUtilizationScorer>(name);
}

TokenLoadScorer::TokenLoadScorer(std::string name, int64_t threshold_tokens)
    : Scorer(std::move(name)), threshold_(threshold_tokens) {}

void TokenLoadScorer::Score(CycleState& state, const Request&,
                            std::span<const EndpointRef> candidates, std::span<double> scores) {
  const auto* info = state.Read<InflightLoadInfo>(kInflightLoadKey);
  for (size_t i = 0; i < candidates.size(); ++i) {
    int64_t tokens = info ? info->Of(candidates[i]).tokens : 0;
    scores[i] =
        1.0 - static_cast<double>(std::min(tokens, threshold_)) / static_cast<double>(threshold_);
  }
}

std::vector<RequiredProducer> TokenLoadScorer::RequiredProducers() const {
  return {{std::string(kInflightLoadProducerType), YAML::Node()}};
}

absl::StatusOr<std::unique_ptr<Plugin>> TokenLoadScorer::Create(const std::string& name,
                                                                const YAML::Node& params) {
  ParamReader reader(params);
  int64_t t = reader.Int("queueThresholdTokens", 4'194'304);
  RETURN_IF_ERROR(reader.Finish());
  if (t <= 0) return absl::InvalidArgumentError("parameter \"queueThresholdTokens\" must be > 0");
  return std::make_unique<TokenLoadScorer>(name, t);
}

LoadAwareScorer::LoadAwareScorer(std::string name, int64_t threshold)
    : Scorer(std::move(name)), threshold_(threshold) {}

void LoadAwareScorer::Score(CycleState&, const Request&, std::span<const EndpointRef> candidates,
                            std::span<double> scores) {
  for (size_t i = 0; i < candidates.size(); ++i) {
    int64_t q = candidates[i]->metrics->Load()->waiting_queue_size;
    if (q <= 0) {
      scores[i] = 0.5;
    } else if (q < threshold_) {
      scores[i] = 0.5 * (1.0 - static_cast<double>(q) / static_cast<double>(threshold_));
    } else {
      scores[i] = 0.0;
    }
  }
}

absl::StatusOr<std::unique_ptr<Plugin>> LoadAwareScorer::Create(const std::string& name,
                                                                const YAML::Node& params) {
  ParamReader reader(params);
  int64_t t = reader.Int("threshold", 128);
  RETURN_IF_ERROR(reader.Finish());
  if (t <= 0) return absl::InvalidArgumentError("parameter \"threshold\" must be > 0");
  return std::make_unique<LoadAwareScorer>(name, t);
}

}  // namespace epp::scheduling
