// Per-request data that producers write into the CycleState and filters/scorers read, with the
// keys the reference uses. Indexed by the candidate's position in the producer's candidate list
// is fragile (filters narrow the list), so every entry is keyed by endpoint.
#ifndef EPP_SCHEDULING_PLUGINS_CYCLE_DATA_H_
#define EPP_SCHEDULING_PLUGINS_CYCLE_DATA_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "scheduling/framework.h"

namespace epp::scheduling {

// approx-prefix-cache-producer → prefix-cache-scorer, no-hit-lru-scorer, prefix-cache-affinity-
// filter.
inline constexpr std::string_view kPrefixMatchKey = "PrefixCacheMatchInfo";
struct PrefixMatchInfo : CycleState::Data {
  int total_blocks = 0;   // blocks of the request's prompt (0: shorter than one block)
  int block_tokens = 16;  // tokens per block (characters / 4)
  absl::flat_hash_map<EndpointRef, int> matched_blocks;  // per candidate; absent = 0
  int Matched(EndpointRef e) const {
    auto it = matched_blocks.find(e);
    return it == matched_blocks.end() ? 0 : it->second;
  }
  // matched / total, 0 when the prompt has no block.
  double Fraction(EndpointRef e) const {
    return total_blocks == 0 ? 0.0 : static_cast<double>(Matched(e)) / total_blocks;
  }
};

// inflight-load-producer → token-load-scorer, concurrency-detector, prefix-cache-affinity-filter.
inline constexpr std::string_view kInflightLoadKey = "InflightLoad";
struct InflightLoad {
  int64_t requests = 0;
  int64_t tokens = 0;
};
struct InflightLoadInfo : CycleState::Data {
  absl::flat_hash_map<EndpointRef, InflightLoad> load;  // per candidate; absent = idle
  int64_t request_tokens = 0;                           // estimated prompt tokens of this request
  InflightLoad Of(EndpointRef e) const {
    auto it = load.find(e);
    return it == load.end() ? InflightLoad{} : it->second;
  }
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_CYCLE_DATA_H_
