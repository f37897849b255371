// single-profile-handler (no parameters): runs the one configured profile once and makes it the
// primary profile. Fails the cycle (ResourceExhausted) when that profile found no endpoint.
// Thread-safe (stateless).
#ifndef EPP_SCHEDULING_PLUGINS_SINGLE_PROFILE_HANDLER_H_
#define EPP_SCHEDULING_PLUGINS_SINGLE_PROFILE_HANDLER_H_

#include <memory>
#include <string>

#include "scheduling/scheduler.h"

namespace epp::scheduling {

inline constexpr std::string_view kSingleProfileHandlerType = "single-profile-handler";

class SingleProfileHandler : public ProfileHandler {
 public:
  using ProfileHandler::ProfileHandler;
  std::string_view Type() const override { return kSingleProfileHandlerType; }
  std::vector<const SchedulerProfile*> PickProfiles(
      CycleState& state, const Request& request,
      const std::map<std::string, std::unique_ptr<SchedulerProfile>>& profiles,
      const std::map<std::string, ProfileResult>& results,
      const std::vector<std::string>& failed) override;
  absl::StatusOr<SchedulingResult> ProcessResults(
      CycleState& state, const Request& request,
      std::map<std::string, ProfileResult> results) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_SINGLE_PROFILE_HANDLER_H_
