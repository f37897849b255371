#include "scheduling/scheduler.h"

#include <algorithm>
#include <cmath>

#include "common/status_macros.h"
#include "common/strings.h"

namespace epp::scheduling {

// The reference's default scheduling when the config has none: queue 2, KV cache 2, prefix 3.
constexpr std::pair<std::string_view, double> kDefaultScorers[] = {
    {"queue-scorer", 2.0}, {"kv-cache-utilization-scorer", 2.0}, {"prefix-cache-scorer", 3.0}};

SchedulerProfile::SchedulerProfile(std::string name, std::vector<Filter*> filters,
                                   std::vector<WeightedScorer> scorers, Picker* picker)
    : name_(std::move(name)),
      filters_(std::move(filters)),
      scorers_(std::move(scorers)),
      picker_(picker) {}

absl::StatusOr<ProfileResult> SchedulerProfile::Run(CycleState& state, const Request& request,
                                                    std::span<const EndpointRef> candidates) const {
  std::vector<EndpointRef> current(candidates.begin(), candidates.end());
  for (Filter* f : filters_) {
    current = f->FilterEndpoints(state, request, current);
    if (current.empty()) {
      return absl::ResourceExhaustedError(
          StrCat("profile ", name_, ": filter ", f->Name(), " left no endpoints"));
    }
  }
  std::vector<ScoredEndpoint> scored(current.size());
  for (size_t i = 0; i < current.size(); ++i) scored[i].endpoint = current[i];
  std::vector<double> scratch(current.size());
  for (const auto& ws : scorers_) {
    std::fill(scratch.begin(), scratch.end(), 0.0);
    ws.scorer->Score(state, request, current, scratch);
    for (size_t i = 0; i < current.size(); ++i) {
      // A NaN would break the picker's ordering; a broken score counts as 0.
      double score = std::isfinite(scratch[i]) ? std::clamp(scratch[i], 0.0, 1.0) : 0.0;
      scored[i].score += ws.weight * score;
    }
  }
  ProfileResult result;
  result.target_endpoints = picker_->Pick(state, std::move(scored));
  if (result.target_endpoints.empty()) {
    return absl::ResourceExhaustedError(
        StrCat("profile ", name_, ": picker ", picker_->Name(), " chose no endpoint"));
  }
  return result;
}

Scheduler::Scheduler(ProfileHandler* handler,
                     std::map<std::string, std::unique_ptr<SchedulerProfile>> profiles,
                     CycleHooks hooks)
    : handler_(handler), profiles_(std::move(profiles)), hooks_(std::move(hooks)) {}

void Scheduler::Complete(uint64_t id, std::string_view endpoint_key) const {
  for (CompletionHook* h : hooks_.completion) h->RequestComplete(id, endpoint_key);
}

absl::StatusOr<SchedulingResult> Scheduler::Schedule(
    const Request& request, std::span<const EndpointRef> candidates) const {
  CycleState state;
  for (DataProducer* p : hooks_.producers) p->Produce(state, request, candidates);
  std::map<std::string, ProfileResult> results;
  std::vector<std::string> failed;
  absl::Status last_error = absl::OkStatus();
  // Bounded: a handler that keeps asking for profiles cannot loop forever.
  for (size_t round = 0; round <= profiles_.size(); ++round) {
    auto next = handler_->PickProfiles(state, request, profiles_, results, failed);
    if (next.empty()) break;
    for (const SchedulerProfile* p : next) {
      auto r = p->Run(state, request, candidates);
      if (r.ok()) {
        results[p->name()] = *std::move(r);
      } else {
        failed.push_back(p->name());
        last_error = r.status();
      }
    }
  }
  if (results.empty()) {
    if (!last_error.ok()) return last_error;
    return absl::ResourceExhaustedError("no profile produced an endpoint");
  }
  auto result = handler_->ProcessResults(state, request, std::move(results));
  if (result.ok()) {
    for (PreRequestHook* h : hooks_.pre_request) h->PreRequest(state, request, *result);
  }
  return result;
}

absl::StatusOr<std::unique_ptr<Scheduler>> BuildScheduler(
    const config::EndpointPickerConfig& config, config::PluginSet& plugins,
    const PluginRegistry& registry) {
  // Role lists in declaration order.
  std::vector<ProfileHandler*> handlers;
  std::vector<Picker*> pickers;
  for (const auto& p : plugins.All()) {
    if (auto* h = dynamic_cast<ProfileHandler*>(p.get())) handlers.push_back(h);
    if (auto* k = dynamic_cast<Picker*>(p.get())) pickers.push_back(k);
  }
  if (handlers.size() > 1) {
    return absl::InvalidArgumentError(StrCat("only one profile handler may be configured; found ",
                                             handlers[0]->Name(), " and ", handlers[1]->Name()));
  }

  auto create = [&](const std::string& type,
                    const YAML::Node& params = YAML::Node()) -> absl::StatusOr<Plugin*> {
    // A created default takes the type as its name unless a declared plugin already has it.
    std::string name = type;
    for (int i = 2; plugins.Find(name) != nullptr; ++i) name = StrCat(type, "-", i);
    auto plugin = registry.Create(type, name, params);
    if (!plugin.ok()) {
      return absl::InvalidArgumentError(
          StrCat("creating required plugin \"", name, "\": ", SV(plugin.status().message())));
    }
    return plugins.Add(*std::move(plugin));
  };

  std::vector<config::ProfileSpec> specs = config.profiles;
  if (specs.empty()) {
    config::ProfileSpec def;
    def.name = "default";
    for (const auto& p : plugins.All()) {
      if (dynamic_cast<Filter*>(p.get()) || dynamic_cast<Scorer*>(p.get()) ||
          dynamic_cast<Picker*>(p.get())) {
        def.plugins.push_back({p->Name(), std::nullopt});
      }
    }
    if (def.plugins.empty() && handlers.empty()) {
      // No scheduling plugins at all: the reference's built-in default profile.
      for (const auto& [type, weight] : kDefaultScorers) {
        ASSIGN_OR_RETURN(Plugin * created, create(std::string(type)));
        def.plugins.push_back({created->Name(), weight});
      }
    }
    specs.push_back(std::move(def));
  }

  // Producers that consumers need and the config does not declare.
  std::vector<RequiredProducer> required;
  for (const auto& p : plugins.All()) {
    if (auto* c = dynamic_cast<const ProducerConsumer*>(p.get())) {
      for (auto& r : c->RequiredProducers()) required.push_back(std::move(r));
    }
  }
  for (size_t i = 0; i < required.size(); ++i) {
    const RequiredProducer& r = required[i];
    bool present = false;
    for (const auto& p : plugins.All()) present = present || p->Type() == r.type;
    if (present) continue;
    // Several consumers may need the same producer; the one that gives parameters (e.g.
    // prefix-cache-scorer's block size) configures it, whatever the declaration order.
    auto empty = [](const YAML::Node& n) {
      return !n || n.IsNull() || (n.IsMap() && n.size() == 0);
    };
    YAML::Node params = YAML::Clone(r.parameters);
    for (size_t j = i + 1; j < required.size(); ++j) {
      if (required[j].type != r.type || empty(required[j].parameters)) continue;
      if (empty(params)) {
        params = YAML::Clone(required[j].parameters);
      } else if (YAML::Dump(params) != YAML::Dump(required[j].parameters)) {
        return absl::InvalidArgumentError(
            StrCat("plugins need \"", r.type,
                   "\" with different parameters; declare it once with the ones to use"));
      }
    }
    RETURN_IF_ERROR(create(r.type, params).status());
  }
  CycleHooks hooks;
  for (const auto& p : plugins.All()) {
    if (auto* d = dynamic_cast<DataProducer*>(p.get())) hooks.producers.push_back(d);
    if (auto* h = dynamic_cast<PreRequestHook*>(p.get())) hooks.pre_request.push_back(h);
    if (auto* h = dynamic_cast<CompletionHook*>(p.get())) hooks.completion.push_back(h);
  }

  std::map<std::string, std::unique_ptr<SchedulerProfile>> profiles;
  for (const auto& spec : specs) {
    std::vector<Filter*> filters;
    std::vector<WeightedScorer> scorers;
    Picker* picker = nullptr;
    for (const auto& ref : spec.plugins) {
      Plugin* p = plugins.Find(ref.plugin_ref);
      std::string where = StrCat("profile \"", spec.name, "\": plugin \"", ref.plugin_ref, "\"");
      if (p == nullptr) return absl::InvalidArgumentError(StrCat(where, " is not declared"));
      bool used = false;
      if (auto* f = dynamic_cast<Filter*>(p)) {
        filters.push_back(f);
        used = true;
      }
      if (auto* s = dynamic_cast<Scorer*>(p)) {
        double w = ref.weight.value_or(1.0);
        if (w < 0) return absl::InvalidArgumentError(StrCat(where, ": weight must be >= 0"));
        scorers.push_back({s, w});
        used = true;
      }
      if (auto* k = dynamic_cast<Picker*>(p)) {
        if (picker != nullptr) {
          return absl::InvalidArgumentError(
              StrCat(where, ": profile already has picker \"", picker->Name(), "\""));
        }
        picker = k;
        used = true;
      }
      if (!used) {
        return absl::InvalidArgumentError(
            StrCat(where, " (", p->Type(), ") is not a filter, scorer or picker"));
      }
      if (ref.weight && dynamic_cast<Scorer*>(p) == nullptr) {
        return absl::InvalidArgumentError(StrCat(where, ": weight is only valid for scorers"));
      }
    }
    if (picker == nullptr) {
      if (!pickers.empty()) {
        picker = pickers.front();
      } else {
        ASSIGN_OR_RETURN(Plugin * created, create("max-score-picker"));
        picker = dynamic_cast<Picker*>(created);
        if (picker == nullptr) return absl::InternalError("max-score-picker is not a picker");
        pickers.push_back(picker);
      }
    }
    profiles[spec.name] = std::make_unique<SchedulerProfile>(spec.name, std::move(filters),
                                                             std::move(scorers), picker);
  }

  ProfileHandler* handler = handlers.empty() ? nullptr : handlers.front();
  if (handler == nullptr) {
    if (profiles.size() > 1) {
      return absl::InvalidArgumentError(
          "more than one scheduling profile needs a profile handler plugin");
    }
    ASSIGN_OR_RETURN(Plugin * created, create("single-profile-handler"));
    handler = dynamic_cast<ProfileHandler*>(created);
    if (handler == nullptr) {
      return absl::InternalError("single-profile-handler is not a profile handler");
    }
  }
  if (handler->Type() == "single-profile-handler" && profiles.size() != 1) {
    return absl::InvalidArgumentError(StrCat(
        "plugin \"", handler->Name(), "\" (single-profile-handler) needs exactly one profile; ",
        profiles.size(), " are configured"));
  }
  return std::make_unique<Scheduler>(handler, std::move(profiles), std::move(hooks));
}

}  // namespace epp::scheduling
