#include "scheduling/plugins/saturation_detectors.h"

#include <algorithm>

#include "common/duration.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "scheduling/plugins/cycle_data.h"
#include "scheduling/plugins/inflight_load_producer.h"

namespace epp::scheduling {
namespace {

// Keeps the candidates `keep` accepts, in order; all of them when it accepts none (the
// reference's detectors never empty the candidate list).
template <typename Keep>
std::vector<EndpointRef> KeepOrAll(std::span<const EndpointRef> candidates, Keep keep) {
  std::vector<EndpointRef> out;
  out.reserve(candidates.size());
  for (EndpointRef e : candidates) {
    if (keep(e)) out.push_back(e);
  }
  if (out.empty()) out.assign(candidates.begin(), candidates.end());
  return out;
}

bool Fresh(const datastore::Metrics& m, std::chrono::system_clock::time_point now,
           std::chrono::nanoseconds threshold) {
  if (m.update_time == std::chrono::system_clock::time_point{}) return false;  // never scraped
  return now - m.update_time <= threshold;
}

}  // namespace

UtilizationDetector::UtilizationDetector(std::string name, UtilizationDetectorParams params,
                                         WallClock now)
    : Filter(std::move(name)), params_(params), now_(std::move(now)) {}

std::vector<EndpointRef> UtilizationDetector::FilterEndpoints(
    CycleState&, const Request&, std::span<const EndpointRef> candidates) {
  const auto now = now_();
  const double scale = 1.0 + params_.headroom;
  const double queue_limit = static_cast<double>(params_.queue_depth_threshold) * scale;
  const double kv_limit = std::min(1.0, params_.kv_cache_util_threshold * scale);
  return KeepOrAll(candidates, [&](EndpointRef e) {
    auto m = e->metrics->Load();
    return Fresh(*m, now, params_.metrics_staleness_threshold) &&
           static_cast<double>(m->waiting_queue_size) < queue_limit &&
           m->kv_cache_usage_percent < kv_limit;
  });
}

double UtilizationDetector::Saturation(std::span<const EndpointRef> candidates,
                                       const CycleState*) const {
  if (candidates.empty()) return 1.0;
  const auto now = now_();
  double sum = 0;
  for (EndpointRef e : candidates) {
    auto m = e->metrics->Load();
    if (!Fresh(*m, now, params_.metrics_staleness_threshold)) {
      sum += 1.0;  // fail closed: no recent evidence that the endpoint has room
      continue;
    }
    sum += std::max(static_cast<double>(m->waiting_queue_size) /
                        static_cast<double>(params_.queue_depth_threshold),
                    m->kv_cache_usage_percent / params_.kv_cache_util_threshold);
  }
  return sum / static_cast<double>(candidates.size());
}

absl::StatusOr<std::unique_ptr<Plugin>> UtilizationDetector::Create(const std::string& name,
                                                                    const YAML::Node& params) {
  ParamReader reader(params);
  UtilizationDetectorParams p;
  p.queue_depth_threshold = reader.Int("queueDepthThreshold", p.queue_depth_threshold);
  p.kv_cache_util_threshold = reader.Double("kvCacheUtilThreshold", p.kv_cache_util_threshold);
  std::string staleness = reader.String("metricsStalenessThreshold", "200ms");
  p.headroom = reader.Double("headroom", p.headroom);
  RETURN_IF_ERROR(reader.Finish());
  if (p.queue_depth_threshold <= 0) {
    return absl::InvalidArgumentError("parameter \"queueDepthThreshold\" must be > 0");
  }
  if (!(p.kv_cache_util_threshold > 0 && p.kv_cache_util_threshold <= 1)) {
    return absl::InvalidArgumentError("parameter \"kvCacheUtilThreshold\" must be in (0, 1]");
  }
  ASSIGN_OR_RETURN(p.metrics_staleness_threshold,
                   ParsePositiveDurationParam("metricsStalenessThreshold", staleness));
  if (!(p.headroom >= 0)) return absl::InvalidArgumentError("parameter \"headroom\" must be >= 0");
  return std::make_unique<UtilizationDetector>(name, p);
}

ConcurrencyDetector::ConcurrencyDetector(std::string name, ConcurrencyDetectorParams params)
    : Filter(std::move(name)), params_(params) {}

int64_t ConcurrencyDetector::Limit() const {
  return params_.mode == ConcurrencyDetectorParams::Mode::kTokens ? params_.max_token_concurrency
                                                                  : params_.max_concurrency;
}

namespace {

int64_t InFlight(const InflightLoadInfo* info, EndpointRef e,
                 ConcurrencyDetectorParams::Mode mode) {
  if (info == nullptr) return 0;
  InflightLoad l = info->Of(e);
  return mode == ConcurrencyDetectorParams::Mode::kTokens ? l.tokens : l.requests;
}

}  // namespace

std::vector<EndpointRef> ConcurrencyDetector::FilterEndpoints(
    CycleState& state, const Request&, std::span<const EndpointRef> candidates) {
  const auto* info = state.Read<InflightLoadInfo>(kInflightLoadKey);
  const double limit = static_cast<double>(Limit()) * (1.0 + params_.headroom);
  return KeepOrAll(candidates, [&](EndpointRef e) {
    return static_cast<double>(InFlight(info, e, params_.mode)) < limit;
  });
}

double ConcurrencyDetector::Saturation(std::span<const EndpointRef> candidates,
                                       const CycleState* state) const {
  if (candidates.empty()) return 1.0;
  const auto* info = state ? state->Read<InflightLoadInfo>(kInflightLoadKey) : nullptr;
  double total = 0;
  for (EndpointRef e : candidates) total += static_cast<double>(InFlight(info, e, params_.mode));
  return total / (static_cast<double>(candidates.size()) * static_cast<double>(Limit()));
}

std::vector<RequiredProducer> ConcurrencyDetector::RequiredProducers() const {
  return {{std::string(kInflightLoadProducerType), YAML::Node()}};
}

absl::StatusOr<std::unique_ptr<Plugin>> ConcurrencyDetector::Create(const std::string& name,
                                                                    const YAML::Node& params) {
  ParamReader reader(params);
  ConcurrencyDetectorParams p;
  std::string mode = reader.String("concurrencyMode", "requests");
  p.max_concurrency = reader.Int("maxConcurrency", p.max_concurrency);
  p.max_token_concurrency = reader.Int("maxTokenConcurrency", p.max_token_concurrency);
  p.headroom = reader.Double("headroom", p.headroom);
  (void)reader.String("inFlightLoadProducerName", "");  // accepted, unused (see the header)
  RETURN_IF_ERROR(reader.Finish());
  if (mode == "requests") {
    p.mode = ConcurrencyDetectorParams::Mode::kRequests;
  } else if (mode == "tokens") {
    p.mode = ConcurrencyDetectorParams::Mode::kTokens;
  } else {
    return absl::InvalidArgumentError(StrCat(
        "parameter \"concurrencyMode\" must be \"requests\" or \"tokens\"; got \"", mode, "\""));
  }
  if (p.max_concurrency <= 0) {
    return absl::InvalidArgumentError("parameter \"maxConcurrency\" must be > 0");
  }
  if (p.max_token_concurrency <= 0) {
    return absl::InvalidArgumentError("parameter \"maxTokenConcurrency\" must be > 0");
  }
  if (!(p.headroom >= 0)) return absl::InvalidArgumentError("parameter \"headroom\" must be >= 0");
  return std::make_unique<ConcurrencyDetector>(name, p);
}

}  // namespace epp::scheduling
