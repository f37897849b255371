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

// The plugins that act around the profiles, in the order they run.
struct CycleHooks {
  std::vector<DataProducer*> producers;
  std::vector<PreRequestHook*> pre_request;
  std::vector<CompletionHook*> completion;
};

class Scheduler {
 public:
  Scheduler(ProfileHandler* handler,
            std::map<std::string, std::unique_ptr<SchedulerProfile>> profiles,
            CycleHooks hooks = {});

  // Runs a cycle over `candidates` (non-empty): producers, profiles, then (on success) the
  // pre-request hooks. ResourceExhausted when no endpoint results.
  absl::StatusOr<SchedulingResult> Schedule(const Request& request,
                                            std::span<const EndpointRef> candidates) const;

  // Tells the completion hooks that request `id` (Request::id of a successful Schedule) is over;
  // call exactly once per such request.
  void Complete(uint64_t id, std::string_view endpoint_key) const;
  const CycleHooks& hooks() const { return hooks_; }

  const std::map<std::string, std::unique_ptr<SchedulerProfile>>& profiles() const {
    return profiles_;
  }

 private:
  ProfileHandler* handler_;
  std::map<std::string, std::unique_ptr<SchedulerProfile>> profiles_;
  CycleHooks hooks_;
};

// Builds the scheduler from the config and its instantiated plugins, applying the reference
// defaults: no scheduling plugins at all (no filter, scorer, picker, handler or profile) → the
// built-in profile queue-scorer 2, kv-cache-utilization-scorer 2, prefix-cache-scorer 3 with
// max-score-picker; no profiles → one "default" profile with every filter, scorer and picker; a
// profile
// without picker → the first declared picker, else a new max-score-picker; a scorer without
// weight → 1; one profile and no handler → a new single-profile-handler; a producer another
// plugin requires (ProducerConsumer) and the config lacks → created with the consumer's
// parameters. Every declared DataProducer, PreRequestHook and CompletionHook runs in declaration
// order. Plugins it creates are
// added to `plugins`, built with `registry`. Errors name the profile and plugin.
absl::StatusOr<std::unique_ptr<Scheduler>> BuildScheduler(
    const config::EndpointPickerConfig& config, config::PluginSet& plugins,
    const PluginRegistry& registry);

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_SCHEDULER_H_
