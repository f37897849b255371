// KV-cache block pool with automatic prefix caching, modelled on vLLM V1's BlockPool:
//  - all blocks exist up front; block 0 is the reserved null block and is never handed out;
//  - a free queue (doubly linked, intrusive) holds every block whose reference count is 0,
//    cached or not; allocation pops from the head (least recently freed) and evicts the
//    popped block's hash, so the cache is LRU over freed blocks;
//  - a prefix hit "touches" a block: reference +1 and, if it was free, off the free queue;
//  - freeing returns blocks to the tail in the order given (callers pass a request's blocks
//    last-first, so suffix blocks are evicted before the shared prefix blocks);
//  - a hash maps to one block; a second block computed with the same hash (vLLM keeps such
//    duplicates until the request ends) is simply not registered.
// Usage counts only referenced blocks: 1 - free / (num_blocks - 1).
//
// Not thread-safe; owned by one Engine.
#ifndef EPP_SIM_ENGINE_BLOCK_POOL_H_
#define EPP_SIM_ENGINE_BLOCK_POOL_H_

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace epp::sim {

using BlockId = int32_t;
using BlockHash = uint64_t;

class BlockPool {
 public:
  // `num_blocks` counts the null block, as vLLM's num_gpu_blocks does; must be >= 2.
  BlockPool(int num_blocks, bool enable_caching);

  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  // Blocks on the free queue (reference count 0), cached or not.
  int num_free() const { return num_free_; }
  // Fraction of usable blocks referenced by some request: 1 - free / (num_blocks - 1).
  double Usage() const;

  // The cached block holding `hash`, if any.
  std::optional<BlockId> Lookup(BlockHash hash) const;
  // Number of leading `hashes` that are all cached (stops at the first miss).
  int MatchPrefix(std::span<const BlockHash> hashes) const;

  // Adds a reference to each block (a prefix hit), taking free ones off the free queue.
  void Touch(std::span<const BlockId> blocks);
  // Pops `n` blocks from the head of the free queue with reference 1, evicting their cached
  // hashes. Requires n <= num_free().
  void Take(int n, std::vector<BlockId>* out);
  // Drops one reference from each block in the order given; blocks reaching 0 go to the tail.
  void Free(std::span<const BlockId> blocks);
  // Registers `block` (referenced, full) under `hash` unless the hash is already cached or
  // caching is off.
  void Cache(BlockId block, BlockHash hash);

  int ref_count(BlockId b) const { return blocks_[b].ref; }
  bool is_cached(BlockId b) const { return blocks_[b].hash.has_value(); }
  // Free-queue order, head first (for tests).
  std::vector<BlockId> FreeQueueForTest() const;
  uint64_t evictions() const { return evictions_; }
  // Drops every cached hash (vLLM's reset_prefix_cache); referenced blocks stay allocated.
  void ResetCache();

 private:
  struct Block {
    int ref = 0;
    BlockId prev = -1;  // free-queue links; -1 when not on the queue
    BlockId next = -1;
    bool queued = false;
    std::optional<BlockHash> hash;
  };
  void PushTail(BlockId b);
  void Unlink(BlockId b);

  std::vector<Block> blocks_;
  BlockId head_ = -1;
  BlockId tail_ = -1;
  int num_free_ = 0;
  bool enable_caching_;
  absl::flat_hash_map<BlockHash, BlockId> cached_;
  uint64_t evictions_ = 0;
};

}  // namespace epp::sim

#endif  // EPP_SIM_ENGINE_BLOCK_POOL_H_
