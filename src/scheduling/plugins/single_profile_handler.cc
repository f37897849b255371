#include "scheduling/plugins/single_profile_handler.h"

#include "common/status_macros.h"

namespace epp::scheduling {

std::vector<const SchedulerProfile*> SingleProfileHandler::PickProfiles(
    CycleState&, const Request&,
    const std::map<std::string, std::unique_ptr<SchedulerProfile>>& profiles,
    const std::map<std::string, ProfileResult>& results, const std::vector<std::string>& failed) {
  if (!results.empty() || !failed.empty() || profiles.empty()) return {};
  return {profiles.begin()->second.get()};
}

absl::StatusOr<SchedulingResult> SingleProfileHandler::ProcessResults(
    CycleState&, const Request&, std::map<std::string, ProfileResult> results) {
  if (results.size() != 1) {
    return absl::ResourceExhaustedError("single profile produced no endpoint");
  }
  SchedulingResult out;
  out.primary_profile = results.begin()->first;
  out.profile_results = std::move(results);
  return out;
}

absl::StatusOr<std::unique_ptr<Plugin>> SingleProfileHandler::Create(const std::string& name,
                                                                     const YAML::Node& params) {
  ParamReader reader(params);
  RETURN_IF_ERROR(reader.Finish());
  return std::make_unique<SingleProfileHandler>(name);
}

}  // namespace epp::scheduling
