// Test helper: a real scheduler built from EndpointPickerConfig text with the real pickers and
// profile handler, the way epp builds it.
#ifndef EPP_TESTING_SCHEDULER_FROM_YAML_H_
#define EPP_TESTING_SCHEDULER_FROM_YAML_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/status_macros.h"
#include "config/endpoint_picker_config.h"
#include "scheduling/plugins/register.h"
#include "scheduling/scheduler.h"

namespace epp::testing {

// Every scheduling plugin, registered as RegisterBuiltinPlugins does.
inline PluginRegistry PickerRegistry() {
  PluginRegistry r;
  scheduling::RegisterSchedulingPlugins(r);
  return r;
}

struct BuiltScheduler {
  std::unique_ptr<config::PluginSet> plugins;  // owns what the scheduler borrows
  std::unique_ptr<scheduling::Scheduler> scheduler;
};

inline absl::StatusOr<BuiltScheduler> SchedulerFromYaml(const std::string& yaml) {
  ASSIGN_OR_RETURN(auto config, config::ParseEndpointPickerConfig(yaml));
  PluginRegistry registry = PickerRegistry();
  BuiltScheduler out;
  ASSIGN_OR_RETURN(out.plugins, config::InstantiatePlugins(config, registry));
  ASSIGN_OR_RETURN(out.scheduler, scheduling::BuildScheduler(config, *out.plugins, registry));
  return out;
}

}  // namespace epp::testing

#endif  // EPP_TESTING_SCHEDULER_FROM_YAML_H_
