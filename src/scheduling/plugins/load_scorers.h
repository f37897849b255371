// Scorers over the model servers' load, with the reference names, parameters and formulas. All
// are thread-safe (stateless) and read each candidate's latest scraped metrics; an endpoint that
// was never scraped reads as zeros, as in the reference.
//
//   queue-scorer                  (no parameters)
//     (max − q) / (max − min) of the waiting-queue size q over the candidates; 1 when all equal.
//   running-requests-size-scorer  (no parameters)
//     The same over the running-requests size.
//   kv-cache-utilization-scorer   (no parameters)
//     1 − KV-cache usage (a fraction).
//   token-load-scorer             queueThresholdTokens (int, default 4194304, > 0)
//     1 − min(in-flight tokens, T) / T, from inflight-load-producer (created when absent).
//   load-aware-scorer             threshold (int, default 128, > 0)   [llm-d]
//     0.5 when the queue is empty; 0.5 × (1 − q / T) below T; 0 at or above T.
#ifndef EPP_SCHEDULING_PLUGINS_LOAD_SCORERS_H_
#define EPP_SCHEDULING_PLUGINS_LOAD_SCORERS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduling/framework.h"

namespace epp::scheduling {

inline constexpr std::string_view kQueueScorerType = "queue-scorer";
inline constexpr std::string_view kRunningRequestsSizeScorerType = "running-requests-size-scorer";
inline constexpr std::string_view kKvCacheUtilizationScorerType = "kv-cache-utilization-scorer";
inline constexpr std::string_view kTokenLoadScorerType = "token-load-scorer";
inline constexpr std::string_view kLoadAwareScorerType = "load-aware-scorer";

class QueueScorer : public Scorer {
 public:
  using Scorer::Scorer;
  std::string_view Type() const override { return kQueueScorerType; }
  void Score(CycleState& state, const Request& request, std::span<const EndpointRef> candidates,
             std::span<double> scores) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);
};

class RunningRequestsSizeScorer : public Scorer {
 public:
  using Scorer::Scorer;
  std::string_view Type() const override { return kRunningRequestsSizeScorerType; }
  void Score(CycleState& state, const Request& request, std::span<const EndpointRef> candidates,
             std::span<double> scores) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);
};

class KvCacheUtilizationScorer : public Scorer {
 public:
  using Scorer::Scorer;
  std::string_view Type() const override { return kKvCacheUtilizationScorerType; }
  void Score(CycleState& state, const Request& request, std::span<const EndpointRef> candidates,
             std::span<double> scores) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);
};

class TokenLoadScorer : public Scorer, public ProducerConsumer {
 public:
  TokenLoadScorer(std::string name, int64_t threshold_tokens);
  std::string_view Type() const override { return kTokenLoadScorerType; }
  void Score(CycleState& state, const Request& request, std::span<const EndpointRef> candidates,
             std::span<double> scores) override;
  std::vector<RequiredProducer> RequiredProducers() const override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  int64_t threshold_;
};

class LoadAwareScorer : public Scorer {
 public:
  LoadAwareScorer(std::string name, int64_t threshold);
  std::string_view Type() const override { return kLoadAwareScorerType; }
  void Score(CycleState& state, const Request& request, std::span<const EndpointRef> candidates,
             std::span<double> scores) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  int64_t threshold_;
};

// Min-max normalisation used by queue-scorer and running-requests-size-scorer:
// (max − v) / (max − min), 1 for every value when all are equal.
void ScoreLowerIsBetter(std::span<const double> values, std::span<double> scores);

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_LOAD_SCORERS_H_
