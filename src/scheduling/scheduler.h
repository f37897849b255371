// SchedulerProfile and Scheduler: run the configured plugins for one request, and build them
// from an EndpointPickerConfig with the reference defaulting rules.
#ifndef EPP_SCHEDULING_SCHEDULER_H_
#define EPP_SCHEDULING_SCHEDULER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/endpoint_picker_config.h"
#include "scheduling/framework.h"

namespace epp::scheduling {

struct WeightedScorer {
  Scorer* scorer;
  double weight;
};

// One profile: filters in order, weighted scorers, one picker. Borrowed plugin pointers (the
// PluginSet owns them). Thread-safe if its plugins are.
class SchedulerProfile {
 public:
  SchedulerProfile(std::string name, std::vector<Filter*> filters,
                   std::vector<WeightedScorer> scorers, Picker* picker);
  const std::string& name() const { return name_; }
  const std::vector<Filter*>& filters() const { return filters_; }
  const std::vector<WeightedScorer>& scorers() const { return scorers_; }
  const Picker* picker() const { return picker_; }

  // ResourceExhausted when the filters leave nothing (or the picker returns nothing).
  absl::StatusOr<ProfileResult> Run(CycleState& state, const Request& request,
                                    std::span<const EndpointRef> candidates) const;

 private:
  std::string name_;
  std::vector<Filter*> filters_;
  std::vector<WeightedScorer> scorers_;
  Picker* picker_;
};

class Scheduler {
 public:
  Scheduler(ProfileHandler* handler,
            std::map<std::string, std::unique_ptr<SchedulerProfile>> profiles);

  // Runs a cycle over `candidates` (non-empty). ResourceExhausted when no endpoint results.
  absl::StatusOr<SchedulingResult> Schedule(const Request& request,
                                            std::span<const EndpointRef> candidates) const;

  const std::map<std::string, std::unique_ptr<SchedulerProfile>>& profiles() const {
    return profiles_;
  }

 private:
  ProfileHandler* handler_;
  std::map<std::string, std::unique_ptr<SchedulerProfile>> profiles_;
};

// Builds the scheduler from the config and its instantiated plugins, applying the reference
// defaults: no profiles → one "default" profile with every filter, scorer and picker; a profile
// without picker → the first declared picker, else a new max-score-picker; a scorer without
// weight → 1; one profile and no handler → a new single-profile-handler. Plugins it creates are
// added to `plugins`, built with `registry`. Errors name the profile and plugin.
absl::StatusOr<std::unique_ptr<Scheduler>> BuildScheduler(
    const config::EndpointPickerConfig& config, config::PluginSet& plugins,
    const PluginRegistry& registry);

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_SCHEDULER_H_
