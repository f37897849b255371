// Saturation detectors, usable as filters (reference names, parameters and defaults). Each is a
// Filter and a SaturationDetector (framework.h) for admission to use. Thread-safe (stateless
// besides const parameters).
//
//   utilization-detector
//     Parameters: queueDepthThreshold (int, 5, > 0), kvCacheUtilThreshold (number, 0.8, in
//     (0, 1]), metricsStalenessThreshold (Go duration string, "200ms", > 0), headroom (number,
//     0, >= 0).
//     Input: each candidate's latest scraped metrics. They are stale when their update_time is
//     older than metricsStalenessThreshold, missing when never set (the epoch).
//     Saturation: the mean over the candidates of max(queue / queueDepthThreshold,
//     KV usage / kvCacheUtilThreshold), where an endpoint with stale or missing metrics counts
//     1.0; not clamped (one endpoint may count more than 1.0); no candidates ⇒ 1.0.
//     Filter: drops candidates with stale or missing metrics and those with
//     queue >= queueDepthThreshold × (1 + headroom) or KV usage >= min(1, kvCacheUtilThreshold ×
//     (1 + headroom)); when that would drop every candidate it returns them all.
//
//   concurrency-detector
//     Parameters: concurrencyMode ("requests" or "tokens", "requests"), maxConcurrency (int, 100,
//     > 0: requests per endpoint), maxTokenConcurrency (int, 1000000, > 0: estimated prompt
//     tokens per endpoint), headroom (number, 0, >= 0), inFlightLoadProducerName (string,
//     accepted for llm-d configs and ignored: there is one in-flight producer).
//     Input: in-flight requests or tokens per candidate from inflight-load-producer's
//     InflightLoadInfo (the producer is created when the config lacks it). Without that data
//     (no producer ran, or `state` is null) every candidate reads as idle.
//     Saturation: Σ in-flight / (candidates × limit), the limit being maxConcurrency or
//     maxTokenConcurrency by mode; no candidates ⇒ 1.0.
//     Filter: drops candidates with in-flight >= limit × (1 + headroom); when that would drop
//     every candidate it returns them all.
#ifndef EPP_SCHEDULING_PLUGINS_SATURATION_DETECTORS_H_
#define EPP_SCHEDULING_PLUGINS_SATURATION_DETECTORS_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduling/framework.h"

namespace epp::scheduling {

inline constexpr std::string_view kUtilizationDetectorType = "utilization-detector";
inline constexpr std::string_view kConcurrencyDetectorType = "concurrency-detector";

// The wall clock the metrics' update_time is compared with; injectable for tests.
using WallClock = std::function<std::chrono::system_clock::time_point()>;

struct UtilizationDetectorParams {
  int64_t queue_depth_threshold = 5;
  double kv_cache_util_threshold = 0.8;
  std::chrono::nanoseconds metrics_staleness_threshold = std::chrono::milliseconds(200);
  double headroom = 0;
};

class UtilizationDetector : public Filter, public SaturationDetector {
 public:
  UtilizationDetector(std::string name, UtilizationDetectorParams params,
                      WallClock now = std::chrono::system_clock::now);
  std::string_view Type() const override { return kUtilizationDetectorType; }
  std::vector<EndpointRef> FilterEndpoints(CycleState& state, const Request& request,
                                           std::span<const EndpointRef> candidates) override;
  double Saturation(std::span<const EndpointRef> candidates,
                    const CycleState* state) const override;
  const UtilizationDetectorParams& params() const { return params_; }
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  UtilizationDetectorParams params_;
  WallClock now_;
};

struct ConcurrencyDetectorParams {
  enum class Mode { kRequests, kTokens };
  Mode mode = Mode::kRequests;
  int64_t max_concurrency = 100;
  int64_t max_token_concurrency = 1'000'000;
  double headroom = 0;
};

class ConcurrencyDetector : public Filter, public SaturationDetector, public ProducerConsumer {
 public:
  ConcurrencyDetector(std::string name, ConcurrencyDetectorParams params);
  std::string_view Type() const override { return kConcurrencyDetectorType; }
  std::vector<EndpointRef> FilterEndpoints(CycleState& state, const Request& request,
                                           std::span<const EndpointRef> candidates) override;
  double Saturation(std::span<const EndpointRef> candidates,
                    const CycleState* state) const override;
  std::vector<RequiredProducer> RequiredProducers() const override;
  const ConcurrencyDetectorParams& params() const { return params_; }
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  int64_t Limit() const;
  ConcurrencyDetectorParams params_;
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_SATURATION_DETECTORS_H_
