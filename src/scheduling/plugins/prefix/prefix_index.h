// PrefixIndex: which endpoint was sent which prompt blocks, as the reference's approximate
// prefix-cache index keeps it: per endpoint an LRU of block hashes with a capacity, and a
// reverse map from a block hash to the endpoints holding it.
//
// Layout (for memory: about 24 bytes per (block, endpoint) entry plus the hash map's slot per
// distinct block): entries live in a pooled array in chunks; each entry links into its
// endpoint's LRU list and into the chain of entries sharing its hash; the map holds each hash's
// chain head.
//
// Thread-safe: one mutex around every operation (each is a few hundred map operations at most).
#ifndef EPP_SCHEDULING_PLUGINS_PREFIX_PREFIX_INDEX_H_
#define EPP_SCHEDULING_PLUGINS_PREFIX_PREFIX_INDEX_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"

namespace epp::scheduling {

class PrefixIndex {
 public:
  PrefixIndex();
  ~PrefixIndex();

  // Records `hashes` as held by `server`, most recent last in the list; entries beyond
  // `capacity` (>= 1) are evicted least recently used first. Hashes already held are refreshed.
  void Insert(std::string_view server, std::span<const uint64_t> hashes, size_t capacity);

  // Walks `hashes` in order and stops at the first one no server holds; for each of `servers`
  // returns how many of the walked hashes it holds (the reference's longest-prefix match).
  std::vector<int> Match(std::span<const uint64_t> hashes,
                         std::span<const std::string_view> servers) const;

  // Forgets a server and all its entries.
  void RemoveServer(std::string_view server);
  // Forgets every server not in `live` (sorted or not).
  void RetainOnly(std::span<const std::string> live);

  size_t entries() const;  // (block, server) pairs held
  size_t servers() const;
  size_t MemoryBytes() const;  // bytes allocated by the index's own structures

 private:
  struct Entry {
    uint64_t hash;
    uint32_t prev;        // LRU neighbours within the server (kNone at the ends)
    uint32_t next;        // ... or the free-list link when unused
    uint32_t chain_next;  // next entry with the same hash (another server)
    uint32_t server;
  };
  struct Server {
    std::string key;
    uint32_t head;  // least recently used
    uint32_t tail;  // most recently used
    size_t size = 0;
    bool live = false;
  };
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kChunk = 1 << 14;

  Entry& At(uint32_t i) { return chunks_[i / kChunk][i % kChunk]; }
  const Entry& At(uint32_t i) const { return chunks_[i / kChunk][i % kChunk]; }
  uint32_t Allocate() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LruUnlink(Server& s, uint32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LruPushTail(Server& s, uint32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Evict(Server& s, uint32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t ServerId(std::string_view key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveServerLocked(uint32_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::vector<std::unique_ptr<Entry[]>> chunks_ ABSL_GUARDED_BY(mu_);
  uint32_t used_ ABSL_GUARDED_BY(mu_) = 0;      // entries ever handed out (high-water mark)
  uint32_t free_ ABSL_GUARDED_BY(mu_) = kNone;  // free list head
  size_t live_entries_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, uint32_t> chains_ ABSL_GUARDED_BY(mu_);  // hash → first entry
  std::vector<Server> servers_ ABSL_GUARDED_BY(mu_);                     // by id; reused
  absl::flat_hash_map<std::string, uint32_t> server_ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_PREFIX_PREFIX_INDEX_H_
