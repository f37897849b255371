#include "scheduling/plugins/prefix/prefix_index.h"

#include <algorithm>

#include "common/strings.h"

namespace epp::scheduling {

PrefixIndex::PrefixIndex() = default;
PrefixIndex::~PrefixIndex() = default;

uint32_t PrefixIndex::Allocate() {
  if (free_ != kNone) {
    uint32_t i = free_;
    free_ = At(i).next;
    return i;
  }
  if (used_ % kChunk == 0) chunks_.push_back(std::make_unique<Entry[]>(kChunk));
  return used_++;
}

void PrefixIndex::LruUnlink(Server& s, uint32_t i) {
  Entry& e = At(i);
  if (e.prev != kNone) {
    At(e.prev).next = e.next;
  } else {
    s.head = e.next;
  }
  if (e.next != kNone) {
    At(e.next).prev = e.prev;
  } else {
    s.tail = e.prev;
  }
  e.prev = e.next = kNone;
}

void PrefixIndex::LruPushTail(Server& s, uint32_t i) {
  Entry& e = At(i);
  e.prev = s.tail;
  e.next = kNone;
  if (s.tail != kNone) {
    At(s.tail).next = i;
  } else {
    s.head = i;
  }
  s.tail = i;
}

// Removes entry i (owned by server s) from its LRU list, its hash chain and the map.
void PrefixIndex::Evict(Server& s, uint32_t i) {
  LruUnlink(s, i);
  Entry& e = At(i);
  auto it = chains_.find(e.hash);
  if (it != chains_.end()) {
    if (it->second == i) {
      if (e.chain_next == kNone) {
        chains_.erase(it);
      } else {
        it->second = e.chain_next;
      }
    } else {
      for (uint32_t c = it->second; c != kNone; c = At(c).chain_next) {
        if (At(c).chain_next == i) {
          At(c).chain_next = e.chain_next;
          break;
        }
      }
    }
  }
  e.next = free_;
  free_ = i;
  --s.size;
  --live_entries_;
}

uint32_t PrefixIndex::ServerId(std::string_view key) {
  auto it = server_ids_.find(AV(key));
  if (it != server_ids_.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(servers_.size());
  for (uint32_t i = 0; i < servers_.size(); ++i) {
    if (!servers_[i].live) {
      id = i;
      break;
    }
  }
  if (id == servers_.size()) servers_.emplace_back();
  Server& s = servers_[id];
  s = Server{std::string(key), kNone, kNone, 0, true};
  server_ids_.emplace(std::string(key), id);
  return id;
}

void PrefixIndex::Insert(std::string_view server, std::span<const uint64_t> hashes,
                         size_t capacity) {
  if (hashes.empty()) return;
  capacity = std::max<size_t>(capacity, 1);
  MutexLock lock(&mu_);
  uint32_t sid = ServerId(server);
  for (uint64_t h : hashes) {
    Server& s = servers_[sid];
    auto [it, inserted] = chains_.try_emplace(h, kNone);
    uint32_t found = kNone;
    if (!inserted) {
      for (uint32_t c = it->second; c != kNone; c = At(c).chain_next) {
        if (At(c).server == sid) {
          found = c;
          break;
        }
      }
    }
    if (found != kNone) {
      LruUnlink(s, found);
      LruPushTail(s, found);
      continue;
    }
    uint32_t i = Allocate();
    Entry& e = At(i);
    e.hash = h;
    e.server = sid;
    e.chain_next = it->second;
    it->second = i;
    LruPushTail(s, i);
    ++s.size;
    ++live_entries_;
    while (s.size > capacity) Evict(s, s.head);
  }
}

std::vector<int> PrefixIndex::Match(std::span<const uint64_t> hashes,
                                    std::span<const std::string_view> servers) const {
  std::vector<int> out(servers.size(), 0);
  MutexLock lock(&mu_);
  if (chains_.empty()) return out;
  // Counts by server id, then mapped to the requested servers.
  std::vector<int> by_id(servers_.size(), 0);
  for (uint64_t h : hashes) {
    auto it = chains_.find(h);
    if (it == chains_.end()) break;
    for (uint32_t c = it->second; c != kNone; c = At(c).chain_next) ++by_id[At(c).server];
  }
  for (size_t i = 0; i < servers.size(); ++i) {
    auto it = server_ids_.find(AV(servers[i]));
    if (it != server_ids_.end()) out[i] = by_id[it->second];
  }
  return out;
}

void PrefixIndex::RemoveServerLocked(uint32_t id) {
  Server& s = servers_[id];
  while (s.head != kNone) Evict(s, s.head);
  server_ids_.erase(s.key);
  s.live = false;
  s.key.clear();
}

void PrefixIndex::RemoveServer(std::string_view server) {
  MutexLock lock(&mu_);
  auto it = server_ids_.find(AV(server));
  if (it != server_ids_.end()) RemoveServerLocked(it->second);
}

void PrefixIndex::RetainOnly(std::span<const std::string> live) {
  MutexLock lock(&mu_);
  for (uint32_t id = 0; id < servers_.size(); ++id) {
    if (!servers_[id].live) continue;
    if (std::find(live.begin(), live.end(), servers_[id].key) == live.end()) {
      RemoveServerLocked(id);
    }
  }
}

size_t PrefixIndex::entries() const {
  MutexLock lock(&mu_);
  return live_entries_;
}

size_t PrefixIndex::servers() const {
  MutexLock lock(&mu_);
  return server_ids_.size();
}

size_t PrefixIndex::MemoryBytes() const {
  MutexLock lock(&mu_);
  // flat_hash_map: one slot (key + value, padded) and one control byte per bucket.
  size_t map = chains_.capacity() * (sizeof(std::pair<const uint64_t, uint32_t>) + 1);
  return chunks_.size() * kChunk * sizeof(Entry) + map + servers_.capacity() * sizeof(Server);
}

}  // namespace epp::scheduling
