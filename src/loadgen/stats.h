// Summary statistics of latency samples: percentiles interpolate linearly between the closest
// ranks (numpy's default, which vLLM's and inference-perf's reports use), so p50 of {1, 2} is
// 1.5 and p0 / p100 are the minimum / maximum.
#ifndef EPP_LOADGEN_STATS_H_
#define EPP_LOADGEN_STATS_H_

#include <cstdint>
#include <vector>

namespace epp::loadgen {

// The p-th percentile (0 ≤ p ≤ 100) of `sorted` (ascending, non-empty).
double Percentile(const std::vector<double>& sorted, double p);

struct Distribution {
  int64_t count = 0;  // with count 0 every other field is 0
  double mean = 0;
  double min = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};

Distribution Summarize(std::vector<double> values);

}  // namespace epp::loadgen

#endif  // EPP_LOADGEN_STATS_H_
