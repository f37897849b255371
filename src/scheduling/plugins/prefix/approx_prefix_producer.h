// approx-prefix-cache-producer: the reference's approximate prefix-cache bookkeeping. It hashes
// the request's prompt into blocks, matches them against what it has sent to each candidate
// (PrefixMatchInfo in the cycle state), and after the pick records the blocks for the primary
// endpoint (and for the first endpoint of a profile named "prefill").
//
// Parameters (reference names and defaults):
//   autoTune (bool, true): block size from the first candidate's vllm:cache_config_info
//     block_size (at least 16), LRU capacity per endpoint from its num_gpu_blocks;
//   blockSizeTokens (int, 16): tokens per block; a block is blockSizeTokens × 4 characters;
//   maxPrefixBlocksToMatch (int, 256); maxPrefixTokensToMatch (int, 0: when > 0 it wins, as
//     tokens / blockSizeTokens blocks);
//   lruCapacityPerServer (int, 31250): blocks remembered per endpoint without auto-tuning;
//   blockSize (deprecated, characters): refused unless blockSizeTokens is also given.
//
// Hashing (xxHash64, as the reference): seed = xxh64(target model ‖ cache_salt); block i =
// xxh64(block bytes ‖ little-endian uint64 of the previous hash); a trailing partial block is
// hashed too; prompts shorter than one block give no blocks. The bytes hashed are the request's
// prompt field as it is in the body (completions: the prompt string without quotes, or the raw
// JSON of a list; chat: the raw JSON of `messages`; other APIs: their input field), so equal
// prefixes give equal blocks for clients that serialize consistently.
//
// Endpoints that leave the pool are forgotten when the pool changes. Thread-safe.
#ifndef EPP_SCHEDULING_PLUGINS_PREFIX_APPROX_PREFIX_PRODUCER_H_
#define EPP_SCHEDULING_PLUGINS_PREFIX_APPROX_PREFIX_PRODUCER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "scheduling/plugins/cycle_data.h"
#include "scheduling/plugins/prefix/prefix_index.h"

namespace epp::scheduling {

inline constexpr std::string_view kApproxPrefixCacheProducerType = "approx-prefix-cache-producer";

struct PrefixParams {
  bool auto_tune = true;
  int block_size_tokens = 16;
  int max_blocks = 256;
  int64_t lru_capacity_per_server = 31250;
};

// Reads the parameters above; errors name the parameter. `extra_keys` are accepted and ignored
// (a consumer's own parameters passed along).
absl::StatusOr<PrefixParams> ParsePrefixParams(const YAML::Node& params,
                                               std::span<const std::string> extra_keys = {});

// The prompt bytes the producer hashes (see above); empty for header-only requests.
std::string_view PrefixInput(const Request& request);

// Block hashes of `input` for the seed of (model, cache_salt).
std::vector<uint64_t> PrefixBlockHashes(std::string_view input, std::string_view model,
                                        std::string_view cache_salt, size_t block_chars,
                                        size_t max_blocks);

// What the producer leaves in the cycle state for its own PreRequest (hashes of this request).
struct PrefixHashes : CycleState::Data {
  std::vector<uint64_t> hashes;
};
inline constexpr std::string_view kPrefixHashesKey = "approx-prefix-cache-producer/hashes";

class ApproxPrefixCacheProducer : public Plugin, public DataProducer, public PreRequestHook {
 public:
  ApproxPrefixCacheProducer(std::string name, PrefixParams params);
  std::string_view Type() const override { return kApproxPrefixCacheProducerType; }
  void Produce(CycleState& state, const Request& request,
               std::span<const EndpointRef> candidates) override;
  void PreRequest(CycleState& state, const Request& request,
                  const SchedulingResult& result) override;
  const PrefixIndex& index() const { return index_; }
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  size_t Capacity(EndpointRef e) const;
  void ForgetDeparted(const datastore::Snapshot& pool);

  PrefixParams params_;
  PrefixIndex index_;
  std::atomic<uint64_t> pool_version_{0};  // the newest pool the index was pruned for
  Mutex retain_mu_;                        // one pruning at a time, newest last
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_PREFIX_APPROX_PREFIX_PRODUCER_H_
