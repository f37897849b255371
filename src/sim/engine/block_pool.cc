#include "sim/engine/block_pool.h"

#include <cassert>

namespace epp::sim {

BlockPool::BlockPool(int num_blocks, bool enable_caching)
    : blocks_(static_cast<size_t>(num_blocks)), enable_caching_(enable_caching) {
  assert(num_blocks >= 2);
  for (BlockId b = 1; b < num_blocks; ++b) PushTail(b);
}

double BlockPool::Usage() const {
  return 1.0 - static_cast<double>(num_free_) / static_cast<double>(blocks_.size() - 1);
}

std::optional<BlockId> BlockPool::Lookup(BlockHash hash) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  return it->second;
}

int BlockPool::MatchPrefix(std::span<const BlockHash> hashes) const {
  if (!enable_caching_) return 0;
  int n = 0;
  for (BlockHash h : hashes) {
    if (!cached_.contains(h)) break;
    ++n;
  }
  return n;
}

void BlockPool::Touch(std::span<const BlockId> blocks) {
  for (BlockId b : blocks) {
    if (blocks_[b].ref == 0 && blocks_[b].queued) Unlink(b);
    ++blocks_[b].ref;
  }
}

void BlockPool::Take(int n, std::vector<BlockId>* out) {
  assert(n <= num_free_);
  for (int i = 0; i < n; ++i) {
    BlockId b = head_;
    Unlink(b);
    Block& blk = blocks_[b];
    if (blk.hash) {
      cached_.erase(*blk.hash);
      blk.hash.reset();
      ++evictions_;
    }
    blk.ref = 1;
    out->push_back(b);
  }
}

void BlockPool::Free(std::span<const BlockId> blocks) {
  for (BlockId b : blocks) {
    assert(blocks_[b].ref > 0);
    if (--blocks_[b].ref == 0) PushTail(b);
  }
}

void BlockPool::Cache(BlockId block, BlockHash hash) {
  if (!enable_caching_ || blocks_[block].hash) return;
  if (cached_.try_emplace(hash, block).second) blocks_[block].hash = hash;
}

void BlockPool::ResetCache() {
  for (auto& [hash, b] : cached_) blocks_[b].hash.reset();
  cached_.clear();
}

std::vector<BlockId> BlockPool::FreeQueueForTest() const {
  std::vector<BlockId> out;
  for (BlockId b = head_; b != -1; b = blocks_[b].next) out.push_back(b);
  return out;
}

void BlockPool::PushTail(BlockId b) {
  Block& blk = blocks_[b];
  blk.prev = tail_;
  blk.next = -1;
  blk.queued = true;
  if (tail_ != -1) {
    blocks_[tail_].next = b;
  } else {
    head_ = b;
  }
  tail_ = b;
  ++num_free_;
}

void BlockPool::Unlink(BlockId b) {
  Block& blk = blocks_[b];
  if (blk.prev != -1) {
    blocks_[blk.prev].next = blk.next;
  } else {
    head_ = blk.next;
  }
  if (blk.next != -1) {
    blocks_[blk.next].prev = blk.prev;
  } else {
    tail_ = blk.prev;
  }
  blk.prev = blk.next = -1;
  blk.queued = false;
  --num_free_;
}

}  // namespace epp::sim
