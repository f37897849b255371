// inflight-load-producer (no parameters): counts, per endpoint, the requests this picker has
// routed there that are not over yet, and their estimated prompt tokens (prompt bytes / 4).
// Produce() publishes the counts of the candidates (InflightLoadInfo); PreRequest() adds the
// request to its primary endpoint; RequestComplete() takes it off. Thread-safe (one mutex, held
// for a few map operations).
//
// With --process-responses=false a request counts as over as soon as it is routed (the stream
// ends there), so the counts stay near zero; keep response processing on to use this producer.
#ifndef EPP_SCHEDULING_PLUGINS_INFLIGHT_LOAD_PRODUCER_H_
#define EPP_SCHEDULING_PLUGINS_INFLIGHT_LOAD_PRODUCER_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "scheduling/plugins/cycle_data.h"

namespace epp::scheduling {

inline constexpr std::string_view kInflightLoadProducerType = "inflight-load-producer";

// Estimated prompt tokens of a request: the prompt field's bytes / 4, rounded up.
int64_t EstimatePromptTokens(const Request& request);

class InflightLoadProducer : public Plugin,
                             public DataProducer,
                             public PreRequestHook,
                             public CompletionHook {
 public:
  explicit InflightLoadProducer(std::string name);
  std::string_view Type() const override { return kInflightLoadProducerType; }
  void Produce(CycleState& state, const Request& request,
               std::span<const EndpointRef> candidates) override;
  void PreRequest(CycleState& state, const Request& request,
                  const SchedulingResult& result) override;
  void RequestComplete(uint64_t request_id, std::string_view endpoint_key) override;
  // The current load of an endpoint (by Key()); for tests and the admin view.
  InflightLoad LoadOf(const std::string& endpoint_key) const;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  struct Routed {
    std::string endpoint_key;
    int64_t tokens;
  };
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, InflightLoad> by_endpoint_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Routed> by_request_ ABSL_GUARDED_BY(mu_);
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_INFLIGHT_LOAD_PRODUCER_H_
