// LruMap: a string-keyed map that remembers the order in which entries were last put, with a
// capacity beyond which the least recently put entry is dropped. Used by the plugins that keep
// per-session or per-endpoint state (session-affinity-*, no-hit-lru-scorer) to bound their
// memory. Not thread-safe: the owner guards it with its mutex.
#ifndef EPP_SCHEDULING_PLUGINS_LRU_MAP_H_
#define EPP_SCHEDULING_PLUGINS_LRU_MAP_H_

#include <cstddef>
#include <list>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "common/strings.h"

namespace epp::scheduling {

template <typename V>
class LruMap {
 public:
  // `capacity` >= 1.
  explicit LruMap(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // Sets `key` to `value` and makes it the most recent entry; then drops least recent entries
  // beyond the capacity.
  void Put(std::string_view key, V value) {
    auto it = index_.find(AV(key));
    if (it != index_.end()) {
      it->second->value = std::move(value);
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    order_.push_front(Node{std::string(key), std::move(value)});
    index_.emplace(order_.front().key, order_.begin());
    while (order_.size() > capacity_) PopOldest();
  }

  // The value of `key`, or null; does not change the order. Valid until the next change.
  const V* Get(std::string_view key) const {
    auto it = index_.find(AV(key));
    return it == index_.end() ? nullptr : &it->second->value;
  }

  bool Erase(std::string_view key) {
    auto it = index_.find(AV(key));
    if (it == index_.end()) return false;
    order_.erase(it->second);
    index_.erase(it);
    return true;
  }

  // Drops least recent entries while `pred(value)` holds for the least recent one; returns how
  // many it dropped.
  template <typename Pred>
  size_t DropOldestWhile(Pred pred) {
    size_t n = 0;
    while (!order_.empty() && pred(order_.back().value)) {
      PopOldest();
      ++n;
    }
    return n;
  }

  size_t size() const { return order_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  struct Node {
    std::string key;
    V value;
  };
  void PopOldest() {
    index_.erase(AV(order_.back().key));
    order_.pop_back();
  }

  size_t capacity_;
  std::list<Node> order_;  // most recent first
  absl::flat_hash_map<std::string, typename std::list<Node>::iterator> index_;
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_LRU_MAP_H_
