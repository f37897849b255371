// lora-affinity-scorer (no parameters), as the reference scores the request's target model (after
// any rewrite) against each candidate's LoRA state from vllm:lora_requests_info:
//   1.0  the adapter has running requests there (already in a GPU slot);
//   0.8  else, the server has room for another adapter: running + waiting adapters < max_lora;
//   0.6  else, the adapter is waiting there;
//   0.0  otherwise.
// (The capacity check comes before the waiting check, as in the reference.) Thread-safe.
#ifndef EPP_SCHEDULING_PLUGINS_LORA_AFFINITY_SCORER_H_
#define EPP_SCHEDULING_PLUGINS_LORA_AFFINITY_SCORER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduling/framework.h"

namespace epp::scheduling {

inline constexpr std::string_view kLoraAffinityScorerType = "lora-affinity-scorer";

class LoraAffinityScorer : public Scorer {
 public:
  using Scorer::Scorer;
  std::string_view Type() const override { return kLoraAffinityScorerType; }
  void Score(CycleState& state, const Request& request, std::span<const EndpointRef> candidates,
             std::span<double> scores) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_LORA_AFFINITY_SCORER_H_
