// The scheduling framework's plugin interfaces. A scheduling cycle runs the DataProducers, then,
// for each profile the ProfileHandler picks: Filters in order → weighted Scorers (scores clamped
// to [0,1]) → one Picker; then the PreRequest hooks see the result. CompletionHooks run once when
// the request is over. Plugins are shared by all requests: thread-safe and non-blocking;
// per-request data lives in CycleState.
#ifndef EPP_SCHEDULING_FRAMEWORK_H_
#define EPP_SCHEDULING_FRAMEWORK_H_

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/plugin.h"
#include "datastore/endpoint.h"
#include "request/openai_request.h"

namespace epp::scheduling {

using EndpointRef = const datastore::Endpoint*;

// What the scheduler knows of one request. Borrowed views; valid for the cycle.
struct Request {
  uint64_t id = 0;  // unique per scheduled request in this process (keys per-request state)
  std::string_view request_id;
  std::string_view target_model;  // after any rewrite
  std::string_view body;          // the request body as received; `parsed` spans index into it
  const request::ParsedRequest* parsed = nullptr;  // null for header-only requests
  const std::map<std::string, std::string, std::less<>>* headers = nullptr;
  // The whole pool at the time of the request (candidates may be a subset); null in some tests.
  const datastore::Snapshot* pool = nullptr;
};

// Per-request scratch shared by the plugins of one cycle. Not thread-safe (one cycle runs on one
// thread).
class CycleState {
 public:
  struct Data {
    virtual ~Data() = default;
  };
  void Write(std::string key, std::unique_ptr<Data> data) {
    data_[std::move(key)] = std::move(data);
  }
  template <typename T>
  T* Read(std::string_view key) const {
    auto it = data_.find(key);
    return it == data_.end() ? nullptr : dynamic_cast<T*>(it->second.get());
  }

 private:
  std::map<std::string, std::unique_ptr<Data>, std::less<>> data_;
};

class Filter : public Plugin {
 public:
  using Plugin::Plugin;
  // Returns the subset of `candidates` that passes, in their order.
  virtual std::vector<EndpointRef> FilterEndpoints(CycleState& state, const Request& request,
                                                   std::span<const EndpointRef> candidates) = 0;
};

class Scorer : public Plugin {
 public:
  using Plugin::Plugin;
  // Writes one score per candidate into `scores` (same size); the profile clamps to [0,1].
  virtual void Score(CycleState& state, const Request& request,
                     std::span<const EndpointRef> candidates, std::span<double> scores) = 0;
};

struct ScoredEndpoint {
  EndpointRef endpoint = nullptr;
  double score = 0;
};

class Picker : public Plugin {
 public:
  using Plugin::Plugin;
  // Returns the chosen endpoints, best first (primary, then fallbacks). `scored` is non-empty.
  virtual std::vector<EndpointRef> Pick(CycleState& state, std::vector<ScoredEndpoint> scored) = 0;
};

struct ProfileResult {
  std::vector<EndpointRef> target_endpoints;  // ordered; non-empty on success
};

struct SchedulingResult {
  std::map<std::string, ProfileResult> profile_results;
  std::string primary_profile;
  const ProfileResult& Primary() const { return profile_results.at(primary_profile); }
};

class SchedulerProfile;

// Roles a Plugin may take besides filter, scorer, picker and profile handler (mixins, found by
// dynamic_cast; one plugin may take several): DataProducer, PreRequestHook, CompletionHook,
// SaturationDetector, ProducerConsumer.
//
// Runs before the profiles and writes per-request data (prefix matches, in-flight load) into the
// cycle state for filters and scorers to read.
class DataProducer {
 public:
  virtual ~DataProducer() = default;
  virtual void Produce(CycleState& state, const Request& request,
                       std::span<const EndpointRef> candidates) = 0;
};

// Runs after a successful cycle with its result (e.g. records the prompt's prefix for the chosen
// endpoint, counts the request as in flight there).
class PreRequestHook {
 public:
  virtual ~PreRequestHook() = default;
  virtual void PreRequest(CycleState& state, const Request& request,
                          const SchedulingResult& result) = 0;
};

// Runs once per scheduled request when it is over: the response ended, failed, or the stream
// closed. `request_id` is Request::id; `endpoint_key` the primary endpoint's Key().
class CompletionHook {
 public:
  virtual ~CompletionHook() = default;
  virtual void RequestComplete(uint64_t request_id, std::string_view endpoint_key) = 0;
};

// Tells how close a set of endpoints (the request's candidates, or the whole pool) is to being
// saturated, for admission: a sheddable request (priority < 0) is rejected (429) when the
// saturation is >= 1.0, and flow control dispatches only below its usage limit. 0 is idle, 1.0
// saturated; values above 1.0 are possible. An empty set is saturated (1.0). `state` is the
// request's cycle state after the DataProducers ran, or null outside a cycle; a detector that
// reads producer data documents what it assumes without it. Thread-safe and non-blocking.
class SaturationDetector {
 public:
  virtual ~SaturationDetector() = default;
  virtual double Saturation(std::span<const EndpointRef> candidates,
                            const CycleState* state) const = 0;
};

// A plugin that reads another plugin's output declares it; the scheduler builder creates the
// producer (with these parameters) when the config does not declare one of that type.
struct RequiredProducer {
  std::string type;
  YAML::Node parameters;
};
class ProducerConsumer {
 public:
  virtual ~ProducerConsumer() = default;
  virtual std::vector<RequiredProducer> RequiredProducers() const = 0;
};

class ProfileHandler : public Plugin {
 public:
  using Plugin::Plugin;
  // Profiles to run next given the results so far; empty ends the cycle. A failed profile has no
  // entry in `results`, and its name is in `failed`.
  virtual std::vector<const SchedulerProfile*> PickProfiles(
      CycleState& state, const Request& request,
      const std::map<std::string, std::unique_ptr<SchedulerProfile>>& profiles,
      const std::map<std::string, ProfileResult>& results,
      const std::vector<std::string>& failed) = 0;
  // Chooses the primary profile; an error fails the request (no endpoint → 429).
  virtual absl::StatusOr<SchedulingResult> ProcessResults(
      CycleState& state, const Request& request, std::map<std::string, ProfileResult> results) = 0;
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_FRAMEWORK_H_
