#include "scheduling/plugins/prefix/approx_prefix_producer.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "common/status_macros.h"
#include "common/strings.h"

namespace epp::scheduling {

absl::StatusOr<PrefixParams> ParsePrefixParams(const YAML::Node& params,
                                               std::span<const std::string> extra_keys) {
  PrefixParams p;
  ParamReader reader(params);
  p.auto_tune = reader.Bool("autoTune", true);
  bool has_tokens = params.IsMap() && params["blockSizeTokens"];
  int64_t block_tokens = reader.Int("blockSizeTokens", 16);
  bool has_chars = params.IsMap() && params["blockSize"];
  int64_t block_chars = reader.Int("blockSize", 0);
  int64_t max_blocks = reader.Int("maxPrefixBlocksToMatch", 256);
  int64_t max_tokens = reader.Int("maxPrefixTokensToMatch", 0);
  int64_t capacity = reader.Int("lruCapacityPerServer", 31250);
  for (const auto& k : extra_keys) {
    if (params.IsMap() && params[k]) reader.String(k, "");  // marks it as seen
  }
  RETURN_IF_ERROR(reader.Finish());
  if (has_chars && !has_tokens) {
    return absl::InvalidArgumentError(
        StrCat("parameter \"blockSize\" (characters, deprecated) is set without "
               "\"blockSizeTokens\"; use blockSizeTokens (tokens; ",
               block_chars, " characters = ", block_chars / 4, " tokens)"));
  }
  if (block_tokens < 1 || block_tokens > 1 << 20) {
    return absl::InvalidArgumentError("parameter \"blockSizeTokens\" must be in [1, 1048576]");
  }
  if (max_blocks < 1 || max_blocks > 1 << 20) {
    return absl::InvalidArgumentError(
        "parameter \"maxPrefixBlocksToMatch\" must be in [1, 1048576]");
  }
  if (max_tokens < 0) {
    return absl::InvalidArgumentError("parameter \"maxPrefixTokensToMatch\" must be >= 0");
  }
  if (capacity < 1) {
    return absl::InvalidArgumentError("parameter \"lruCapacityPerServer\" must be >= 1");
  }
  p.block_size_tokens = static_cast<int>(block_tokens);
  p.max_blocks = static_cast<int>(max_blocks);
  if (max_tokens > 0)
    p.max_blocks = static_cast<int>(std::max<int64_t>(1, max_tokens / block_tokens));
  p.lru_capacity_per_server = capacity;
  return p;
}

std::string_view PrefixInput(const Request& request) {
  if (request.parsed == nullptr) return {};
  std::string_view raw = request.parsed->prompt.In(request.body);
  // A completions prompt string: its characters, without the quotes.
  if (raw.size() >= 2 && raw.front() == '"' && raw.back() == '"') {
    raw = raw.substr(1, raw.size() - 2);
  }
  return raw;
}

std::vector<uint64_t> PrefixBlockHashes(std::string_view input, std::string_view model,
                                        std::string_view cache_salt, size_t block_chars,
                                        size_t max_blocks) {
  std::vector<uint64_t> out;
  if (input.size() < block_chars || block_chars == 0) return out;
  input = input.substr(0, std::min(input.size(), block_chars * max_blocks));
  std::string seed_input = StrCat(model, cache_salt);
  uint64_t prev = XXH64(seed_input.data(), seed_input.size(), 0);
  // One-shot hashing of (block bytes ‖ little-endian previous hash) from a reused buffer: the
  // streaming API's per-block state reset costs more than hashing a 64-byte block.
  thread_local std::string buf;
  buf.resize(block_chars + 8);
  out.reserve((input.size() + block_chars - 1) / block_chars);
  for (size_t off = 0; off < input.size(); off += block_chars) {
    size_t n = std::min(block_chars, input.size() - off);
    std::memcpy(buf.data(), input.data() + off, n);
    for (int b = 0; b < 8; ++b)
      buf[n + static_cast<size_t>(b)] = static_cast<char>(prev >> (8 * b));
    prev = XXH64(buf.data(), n + 8, 0);
    out.push_back(prev);
  }
  return out;
}

ApproxPrefixCacheProducer::ApproxPrefixCacheProducer(std::string name, PrefixParams params)
    : Plugin(std::move(name)), params_(params) {}

size_t ApproxPrefixCacheProducer::Capacity(EndpointRef e) const {
  if (params_.auto_tune) {
    int64_t blocks = e->metrics->Load()->cache_num_gpu_blocks;
    if (blocks > 0) return static_cast<size_t>(blocks);
  }
  return static_cast<size_t>(params_.lru_capacity_per_server);
}

void ApproxPrefixCacheProducer::ForgetDeparted(const datastore::Snapshot& pool) {
  // Only a newer pool prunes the index: a request still holding an older snapshot must not
  // forget endpoints that joined since.
  if (pool.version <= pool_version_.load(std::memory_order_acquire)) return;
  MutexLock lock(&retain_mu_);
  if (pool.version <= pool_version_.load(std::memory_order_relaxed)) return;
  pool_version_.store(pool.version, std::memory_order_release);
  std::vector<std::string> live;
  live.reserve(pool.endpoints.size());
  for (const auto& e : pool.endpoints) live.push_back(e->Key());
  index_.RetainOnly(live);
}

void ApproxPrefixCacheProducer::Produce(CycleState& state, const Request& request,
                                        std::span<const EndpointRef> candidates) {
  if (request.pool != nullptr) ForgetDeparted(*request.pool);
  int block_tokens = params_.block_size_tokens;
  if (params_.auto_tune && !candidates.empty()) {
    int64_t bs = candidates.front()->metrics->Load()->cache_block_size;
    if (bs > 0) block_tokens = static_cast<int>(std::max<int64_t>(bs, 16));
  }
  std::string_view salt =
      request.parsed != nullptr ? std::string_view(request.parsed->cache_salt) : "";
  auto hashes = std::make_unique<PrefixHashes>();
  hashes->hashes = PrefixBlockHashes(PrefixInput(request), request.target_model, salt,
                                     static_cast<size_t>(block_tokens) * 4,
                                     static_cast<size_t>(params_.max_blocks));
  auto info = std::make_unique<PrefixMatchInfo>();
  info->total_blocks = static_cast<int>(hashes->hashes.size());
  info->block_tokens = block_tokens;
  if (!hashes->hashes.empty()) {
    std::vector<std::string> keys;
    std::vector<std::string_view> views;
    keys.reserve(candidates.size());
    for (EndpointRef e : candidates) keys.push_back(e->Key());
    for (const auto& k : keys) views.push_back(k);
    std::vector<int> matched = index_.Match(hashes->hashes, views);
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (matched[i] > 0) info->matched_blocks[candidates[i]] = matched[i];
    }
  }
  state.Write(std::string(kPrefixMatchKey), std::move(info));
  state.Write(std::string(kPrefixHashesKey), std::move(hashes));
}

void ApproxPrefixCacheProducer::PreRequest(CycleState& state, const Request&,
                                           const SchedulingResult& result) {
  const auto* hashes = state.Read<PrefixHashes>(kPrefixHashesKey);
  if (hashes == nullptr || hashes->hashes.empty()) return;
  auto record = [&](EndpointRef e) { index_.Insert(e->Key(), hashes->hashes, Capacity(e)); };
  const auto& primary = result.Primary().target_endpoints;
  if (!primary.empty()) record(primary.front());
  auto prefill = result.profile_results.find("prefill");
  if (prefill != result.profile_results.end() && result.primary_profile != "prefill" &&
      !prefill->second.target_endpoints.empty()) {
    record(prefill->second.target_endpoints.front());
  }
}

absl::StatusOr<std::unique_ptr<Plugin>> ApproxPrefixCacheProducer::Create(
    const std::string& name, const YAML::Node& params) {
  ASSIGN_OR_RETURN(PrefixParams p, ParsePrefixParams(params));
  return std::make_unique<ApproxPrefixCacheProducer>(name, p);
}

}  // namespace epp::scheduling
