// Pickers with the reference names and parameters.
//
//   max-score-picker   parameters: maxNumOfEndpoints (int, default 1, >= 1)
//     Returns the maxNumOfEndpoints best-scored candidates, best first (primary, then
//     fallbacks), ties broken uniformly at random (as the reference's shuffle-then-stable-sort;
//     one pass with reservoir tie-breaking when only one endpoint is asked for).
//   random-picker      parameters: maxNumOfEndpoints (int, default 1, >= 1)
//     Returns maxNumOfEndpoints candidates in uniformly random order, ignoring scores.
//   weighted-random-picker   parameters: maxNumOfEndpoints (int, default 1, >= 1)
//     Samples without replacement in proportion to the score (A-Res: key = U^(1/score), highest
//     keys first); zero scores come last; all zero → as random-picker.
//
// Both are thread-safe: randomness comes from a per-thread generator.
#ifndef EPP_SCHEDULING_PLUGINS_PICKERS_H_
#define EPP_SCHEDULING_PLUGINS_PICKERS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduling/framework.h"

namespace epp::scheduling {

inline constexpr std::string_view kMaxScorePickerType = "max-score-picker";
inline constexpr std::string_view kRandomPickerType = "random-picker";
inline constexpr std::string_view kWeightedRandomPickerType = "weighted-random-picker";

class MaxScorePicker : public Picker {
 public:
  MaxScorePicker(std::string name, int max_endpoints);
  std::string_view Type() const override { return kMaxScorePickerType; }
  std::vector<EndpointRef> Pick(CycleState& state, std::vector<ScoredEndpoint> scored) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  int max_endpoints_;
};

class RandomPicker : public Picker {
 public:
  RandomPicker(std::string name, int max_endpoints);
  std::string_view Type() const override { return kRandomPickerType; }
  std::vector<EndpointRef> Pick(CycleState& state, std::vector<ScoredEndpoint> scored) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  int max_endpoints_;
};

class WeightedRandomPicker : public Picker {
 public:
  WeightedRandomPicker(std::string name, int max_endpoints);
  std::string_view Type() const override { return kWeightedRandomPickerType; }
  std::vector<EndpointRef> Pick(CycleState& state, std::vector<ScoredEndpoint> scored) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  int max_endpoints_;
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_PICKERS_H_
