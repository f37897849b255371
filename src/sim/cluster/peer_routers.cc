#include "sim/cluster/peer_routers.h"

#include <algorithm>
#include <list>
#include <map>
#include <vector>

namespace epp::sim {

using loadgen::WorkRequest;

namespace {

size_t CommonPrefix(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// What one worker was sent: distinct prompts, sorted for prefix lookups, with LRU order.
class WorkerRecord {
 public:
  size_t LongestMatch(const std::string& prompt) const {
    if (prompts_.empty()) return 0;
    size_t best = 0;
    auto it = prompts_.lower_bound(prompt);
    if (it != prompts_.end()) best = std::max(best, CommonPrefix(it->first, prompt));
    if (it != prompts_.begin()) best = std::max(best, CommonPrefix(std::prev(it)->first, prompt));
    return best;
  }
  void Insert(const std::string& prompt) {
    auto [it, inserted] = prompts_.try_emplace(prompt);
    if (inserted) {
      size_ += static_cast<int64_t>(prompt.size());
      lru_.push_back(&it->first);
      it->second.lru = std::prev(lru_.end());
    } else {
      lru_.splice(lru_.end(), lru_, it->second.lru);
    }
  }
  void Trim(int64_t max_size) {
    while (size_ > max_size && !lru_.empty()) {
      const std::string* oldest = lru_.front();
      lru_.pop_front();
      size_ -= static_cast<int64_t>(oldest->size());
      prompts_.erase(*oldest);
    }
  }

 private:
  struct Entry {
    std::list<const std::string*>::iterator lru;
  };
  std::map<std::string, Entry> prompts_;
  std::list<const std::string*> lru_;  // least recently used first
  int64_t size_ = 0;
};

class CacheAwareRouter : public Router {
 public:
  CacheAwareRouter(std::string name, int n, CacheAwareParams p)
      : name_(std::move(name)),
        params_(p),
        load_(static_cast<size_t>(n)),
        processed_(static_cast<size_t>(n)),
        records_(static_cast<size_t>(n)) {}

  std::string Name() const override { return name_; }

  int Route(uint64_t, const WorkRequest& r, std::string_view) override {
    if (r.arrival_s >= next_eviction_) {
      for (auto& rec : records_) rec.Trim(params_.max_tree_size);
      next_eviction_ = r.arrival_s + params_.eviction_interval_s;
    }
    auto [lo, hi] = std::minmax_element(load_.begin(), load_.end());
    bool imbalanced =
        (*hi - *lo) > params_.balance_abs_threshold &&
        static_cast<double>(*hi) > params_.balance_rel_threshold * static_cast<double>(*lo);
    int chosen;
    if (imbalanced) {
      chosen = LeastLoaded(nullptr);
    } else {
      std::vector<size_t> match(records_.size());
      size_t best = 0;
      for (size_t i = 0; i < records_.size(); ++i) {
        match[i] = records_[i].LongestMatch(r.prompt);
        best = std::max(best, match[i]);
      }
      double rate =
          r.prompt.empty() ? 0.0 : static_cast<double>(best) / static_cast<double>(r.prompt.size());
      if (rate > params_.cache_threshold) {
        std::vector<bool> longest(records_.size());
        for (size_t i = 0; i < records_.size(); ++i) longest[i] = match[i] == best;
        chosen = LeastLoaded(&longest);
      } else {
        chosen = LeastLoaded(nullptr);
      }
    }
    records_[static_cast<size_t>(chosen)].Insert(r.prompt);
    ++load_[static_cast<size_t>(chosen)];
    ++processed_[static_cast<size_t>(chosen)];
    return chosen;
  }

  void Completed(uint64_t, int server) override { --load_[static_cast<size_t>(server)]; }

 private:
  // Least in-flight among `allowed` (all when null); ties: fewer processed, then index.
  int LeastLoaded(const std::vector<bool>* allowed) const {
    int best = -1;
    for (size_t i = 0; i < load_.size(); ++i) {
      if (allowed && !(*allowed)[i]) continue;
      if (best < 0 || load_[i] < load_[static_cast<size_t>(best)] ||
          (load_[i] == load_[static_cast<size_t>(best)] &&
           processed_[i] < processed_[static_cast<size_t>(best)])) {
        best = static_cast<int>(i);
      }
    }
    return best;
  }

  std::string name_;
  CacheAwareParams params_;
  std::vector<int64_t> load_;
  std::vector<int64_t> processed_;
  std::vector<WorkerRecord> records_;
  double next_eviction_ = 0;
};

}  // namespace

std::unique_ptr<Router> MakeCacheAwareRouter(std::string name, int servers,
                                             CacheAwareParams params) {
  return std::make_unique<CacheAwareRouter>(std::move(name), servers, params);
}

}  // namespace epp::sim
