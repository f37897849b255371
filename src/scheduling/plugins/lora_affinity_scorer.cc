#include "scheduling/plugins/lora_affinity_scorer.h"

#include "common/status_macros.h"

namespace epp::scheduling {

void LoraAffinityScorer::Score(CycleState&, const Request& request,
                               std::span<const EndpointRef> candidates, std::span<double> scores) {
  for (size_t i = 0; i < candidates.size(); ++i) {
    auto m = candidates[i]->metrics->Load();
    auto has = [&](const std::map<std::string, int>& models) {
      return models.find(std::string(request.target_model)) != models.end();
    };
    if (has(m->active_models)) {
      scores[i] = 1.0;
    } else if (static_cast<int64_t>(m->active_models.size() + m->waiting_models.size()) <
               m->max_active_models) {
      scores[i] = 0.8;
    } else if (has(m->waiting_models)) {
      scores[i] = 0.6;
    } else {
      scores[i] = 0.0;
    }
  }
}

absl::StatusOr<std::unique_ptr<Plugin>> LoraAffinityScorer::Create(const std::string& name,
                                                                   const YAML::Node& params) {
  ParamReader reader(params);
  RETURN_IF_ERROR(reader.Finish());
  return std::make_unique<LoraAffinityScorer>(name);
}

}  // namespace epp::scheduling
