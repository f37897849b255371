#include "scheduling/plugins/pickers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "common/status_macros.h"
#include "scheduling/plugins/thread_rng.h"

namespace epp::scheduling {
namespace {

absl::StatusOr<int> MaxEndpointsParam(const YAML::Node& params) {
  ParamReader reader(params);
  int64_t n = reader.Int("maxNumOfEndpoints", 1);
  RETURN_IF_ERROR(reader.Finish());
  if (n < 1 || n > 1024) {
    return absl::InvalidArgumentError("parameter \"maxNumOfEndpoints\" must be in [1, 1024]");
  }
  return static_cast<int>(n);
}

std::vector<EndpointRef> Take(const std::vector<ScoredEndpoint>& scored, int n) {
  std::vector<EndpointRef> out;
  size_t count = std::min(scored.size(), static_cast<size_t>(n));
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) out.push_back(scored[i].endpoint);
  return out;
}

}  // namespace

MaxScorePicker::MaxScorePicker(std::string name, int max_endpoints)
    : Picker(std::move(name)), max_endpoints_(max_endpoints) {}

std::vector<EndpointRef> MaxScorePicker::Pick(CycleState&, std::vector<ScoredEndpoint> scored) {
  auto& rng = ThreadRng();
  if (max_endpoints_ == 1) {
    // One pass; among equal best scores each is kept with probability 1/(ties so far), which
    // makes the pick uniform among them, as shuffle-then-sort does.
    size_t best = 0;
    uint64_t ties = 1;
    for (size_t i = 1; i < scored.size(); ++i) {
      if (scored[i].score > scored[best].score) {
        best = i;
        ties = 1;
      } else if (scored[i].score == scored[best].score && rng() % ++ties == 0) {
        best = i;
      }
    }
    return {scored[best].endpoint};
  }
  // After a uniform shuffle any deterministic selection breaks ties uniformly.
  std::shuffle(scored.begin(), scored.end(), rng);
  size_t n = std::min(scored.size(), static_cast<size_t>(max_endpoints_));
  std::partial_sort(
      scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(n), scored.end(),
      [](const ScoredEndpoint& a, const ScoredEndpoint& b) { return a.score > b.score; });
  return Take(scored, max_endpoints_);
}

absl::StatusOr<std::unique_ptr<Plugin>> MaxScorePicker::Create(const std::string& name,
                                                               const YAML::Node& params) {
  ASSIGN_OR_RETURN(int n, MaxEndpointsParam(params));
  return std::make_unique<MaxScorePicker>(name, n);
}

RandomPicker::RandomPicker(std::string name, int max_endpoints)
    : Picker(std::move(name)), max_endpoints_(max_endpoints) {}

std::vector<EndpointRef> RandomPicker::Pick(CycleState&, std::vector<ScoredEndpoint> scored) {
  std::shuffle(scored.begin(), scored.end(), ThreadRng());
  return Take(scored, max_endpoints_);
}

absl::StatusOr<std::unique_ptr<Plugin>> RandomPicker::Create(const std::string& name,
                                                             const YAML::Node& params) {
  ASSIGN_OR_RETURN(int n, MaxEndpointsParam(params));
  return std::make_unique<RandomPicker>(name, n);
}

WeightedRandomPicker::WeightedRandomPicker(std::string name, int max_endpoints)
    : Picker(std::move(name)), max_endpoints_(max_endpoints) {}

std::vector<EndpointRef> WeightedRandomPicker::Pick(CycleState&,
                                                    std::vector<ScoredEndpoint> scored) {
  auto& rng = ThreadRng();
  std::shuffle(scored.begin(), scored.end(), rng);  // random order among equal keys
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::pair<double, EndpointRef>> keyed;
  keyed.reserve(scored.size());
  for (const auto& s : scored) {
    // A-Res: U^(1/w); compared through logs (log U / w) to stay exact for tiny weights.
    double key = s.score > 0 ? std::log(std::max(u(rng), 1e-300)) / s.score
                             : -std::numeric_limits<double>::infinity();
    keyed.emplace_back(key, s.endpoint);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<EndpointRef> out;
  size_t n = std::min(keyed.size(), static_cast<size_t>(max_endpoints_));
  for (size_t i = 0; i < n; ++i) out.push_back(keyed[i].second);
  return out;
}

absl::StatusOr<std::unique_ptr<Plugin>> WeightedRandomPicker::Create(const std::string& name,
                                                                     const YAML::Node& params) {
  ASSIGN_OR_RETURN(int n, MaxEndpointsParam(params));
  return std::make_unique<WeightedRandomPicker>(name, n);
}

}  // namespace epp::scheduling
