#include "sim/cluster/peer_routers.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "sim/engine/tokenizer.h"

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

// ---- dynamo-kv ----

constexpr uint64_t kDynamoHashSeed = 1337;

// Sequence hashes of the full `block_size`-token blocks of `tokens`.
std::vector<uint64_t> DynamoSequenceHashes(const std::vector<TokenId>& tokens, int block_size) {
  std::vector<uint64_t> out;
  const size_t bs = static_cast<size_t>(block_size);
  uint64_t parent = 0;
  for (size_t i = 0; i + bs <= tokens.size(); i += bs) {
    uint64_t block = XXH3_64bits_withSeed(&tokens[i], bs * sizeof(TokenId), kDynamoHashSeed);
    if (out.empty()) {
      parent = block;
    } else {
      uint64_t pair[2] = {parent, block};
      parent = XXH3_64bits_withSeed(pair, sizeof(pair), kDynamoHashSeed);
    }
    out.push_back(parent);
  }
  return out;
}

class DynamoKvRouter : public Router {
 public:
  DynamoKvRouter(std::string name, int n, DynamoKvParams p)
      : name_(std::move(name)), params_(p), workers_(static_cast<size_t>(n)), rng_(p.seed) {}

  std::string Name() const override { return name_; }

  int Route(uint64_t id, const WorkRequest& r, std::string_view) override {
    const double now = r.arrival_s;
    Expire(now);
    std::vector<TokenId> tokens = Tokenize(r.prompt);
    std::vector<uint64_t> hashes = DynamoSequenceHashes(tokens, params_.block_size);
    const int64_t isl = static_cast<int64_t>(tokens.size());
    const bool partial = tokens.size() % static_cast<size_t>(params_.block_size) != 0;
    std::vector<int64_t> overlap = Overlaps(hashes, now);

    const double bs = params_.block_size;
    std::vector<double> cost(workers_.size());
    for (size_t w = 0; w < workers_.size(); ++w) {
      const Worker& wk = workers_[w];
      int64_t new_tokens = std::max<int64_t>(isl - overlap[w] * params_.block_size, 0);
      double prefill_blocks = static_cast<double>(wk.prefill_tokens + new_tokens) / bs;
      int64_t decode = static_cast<int64_t>(wk.active_blocks.size()) + wk.unshared_blocks;
      for (uint64_t h : hashes) decode += wk.active_blocks.contains(h) ? 0 : 1;
      if (partial) ++decode;
      cost[w] = params_.overlap_score_weight * prefill_blocks + static_cast<double>(decode);
    }
    double best = *std::min_element(cost.begin(), cost.end());
    std::vector<int> ties;
    int64_t smallest = -1;
    for (size_t w = 0; w < workers_.size(); ++w) {
      if (cost[w] != best) continue;
      int64_t size = workers_[w].indexed;
      if (smallest < 0 || size < smallest) {
        smallest = size;
        ties.clear();
      }
      if (size == smallest) ties.push_back(static_cast<int>(w));
    }
    int chosen = ties[std::uniform_int_distribution<size_t>(0, ties.size() - 1)(rng_)];

    Worker& wk = workers_[static_cast<size_t>(chosen)];
    Active a;
    a.server = chosen;
    a.prefill_tokens =
        std::max<int64_t>(isl - overlap[static_cast<size_t>(chosen)] * params_.block_size, 0);
    a.partial = partial;
    a.blocks = hashes;
    for (uint64_t h : hashes) ++wk.active_blocks[h];
    if (partial) ++wk.unshared_blocks;
    wk.prefill_tokens += a.prefill_tokens;
    active_[id] = std::move(a);
    Record(hashes, chosen, now + params_.ttl_s);
    return chosen;
  }

  void FirstToken(uint64_t id, int) override {
    auto it = active_.find(id);
    if (it == active_.end() || !it->second.prefilling) return;
    it->second.prefilling = false;
    workers_[static_cast<size_t>(it->second.server)].prefill_tokens -= it->second.prefill_tokens;
  }

  void Completed(uint64_t id, int) override {
    auto it = active_.find(id);
    if (it == active_.end()) return;
    FirstToken(id, it->second.server);
    Worker& wk = workers_[static_cast<size_t>(it->second.server)];
    for (uint64_t h : it->second.blocks) {
      auto b = wk.active_blocks.find(h);
      if (--b->second == 0) wk.active_blocks.erase(b);
    }
    if (it->second.partial) --wk.unshared_blocks;
    active_.erase(it);
  }

 private:
  struct Worker {
    absl::flat_hash_map<uint64_t, int> active_blocks;  // sequence hash → active requests
    int64_t unshared_blocks = 0;                       // partial last blocks
    int64_t prefill_tokens = 0;                        // of active requests before first token
    int64_t indexed = 0;                               // blocks predicted cached
  };
  struct Active {
    int server = 0;
    int64_t prefill_tokens = 0;
    bool prefilling = true;
    bool partial = false;
    std::vector<uint64_t> blocks;
  };
  struct Holder {
    int server;
    double expiry;
  };
  struct Expiry {
    double at;
    uint64_t hash;
    int server;
  };

  std::vector<int64_t> Overlaps(const std::vector<uint64_t>& hashes, double now) const {
    std::vector<int64_t> overlap(workers_.size(), 0);
    std::vector<bool> alive(workers_.size(), true);
    size_t left = workers_.size();
    for (size_t i = 0; i < hashes.size() && left > 0; ++i) {
      auto it = index_.find(hashes[i]);
      std::vector<bool> here(workers_.size(), false);
      if (it != index_.end()) {
        for (const Holder& h : it->second) here[static_cast<size_t>(h.server)] = h.expiry > now;
      }
      for (size_t w = 0; w < workers_.size(); ++w) {
        if (!alive[w]) continue;
        if (here[w]) {
          overlap[w] = static_cast<int64_t>(i) + 1;
        } else {
          alive[w] = false;
          --left;
        }
      }
    }
    return overlap;
  }

  void Record(const std::vector<uint64_t>& hashes, int server, double expiry) {
    for (uint64_t h : hashes) {
      auto& holders = index_[h];
      auto it = std::find_if(holders.begin(), holders.end(),
                             [&](const Holder& x) { return x.server == server; });
      if (it == holders.end()) {
        holders.push_back({server, expiry});
        ++workers_[static_cast<size_t>(server)].indexed;
        ++size_;
      } else {
        it->expiry = expiry;
      }
      expiries_.push_back({expiry, h, server});
    }
    if (size_ > params_.max_tree_size) {
      auto target = static_cast<int64_t>(params_.prune_target_ratio *
                                         static_cast<double>(params_.max_tree_size));
      while (size_ > target && !expiries_.empty()) PopOldest();
    }
  }

  // Drops the (hash, server) pair of the oldest expiry record if that record is still current.
  void PopOldest() {
    Expiry e = expiries_.front();
    expiries_.pop_front();
    auto it = index_.find(e.hash);
    if (it == index_.end()) return;
    auto& holders = it->second;
    auto h = std::find_if(holders.begin(), holders.end(), [&](const Holder& x) {
      return x.server == e.server && x.expiry == e.at;
    });
    if (h == holders.end()) return;  // refreshed since, or already gone
    holders.erase(h);
    --workers_[static_cast<size_t>(e.server)].indexed;
    --size_;
    if (holders.empty()) index_.erase(it);
  }

  // Expiry records are appended in time order (now + ttl with now non-decreasing).
  void Expire(double now) {
    while (!expiries_.empty() && expiries_.front().at <= now) PopOldest();
  }

  std::string name_;
  DynamoKvParams params_;
  std::vector<Worker> workers_;
  absl::flat_hash_map<uint64_t, std::vector<Holder>> index_;
  std::deque<Expiry> expiries_;
  int64_t size_ = 0;
  absl::flat_hash_map<uint64_t, Active> active_;
  std::mt19937_64 rng_;
};

// ---- aibrix-prefix-cache ----

class AibrixPrefixCacheRouter : public Router {
 public:
  AibrixPrefixCacheRouter(std::string name, int n, AibrixPrefixCacheParams p)
      : name_(std::move(name)), params_(p), running_(static_cast<size_t>(n)), rng_(p.seed) {}

  std::string Name() const override { return name_; }

  int Route(uint64_t, const WorkRequest& r, std::string_view) override {
    const double now = r.arrival_s;
    if (now >= next_eviction_) {
      Evict(now);
      next_eviction_ = now + 1;
    }
    std::vector<uint64_t> hashes = Hashes(r.prompt);
    auto [lo, hi] = std::minmax_element(running_.begin(), running_.end());
    int chosen = -1;
    if (*hi - *lo > params_.imbalance_abs_count) {
      chosen = RandomLeastLoaded();
    } else {
      std::vector<int> percent = Match(hashes);
      chosen = PickMatched(percent);
      if (chosen < 0) chosen = RandomLeastLoaded();
    }
    for (uint64_t h : hashes) Put(h, chosen, now);
    ++running_[static_cast<size_t>(chosen)];
    return chosen;
  }

  void Completed(uint64_t, int server) override { --running_[static_cast<size_t>(server)]; }

 private:
  struct Block {
    std::list<uint64_t>::iterator lru;
    double last_put = 0;
    std::vector<int> pods;
  };

  std::vector<uint64_t> Hashes(const std::string& text) const {
    std::vector<uint64_t> out;
    const size_t bs = static_cast<size_t>(params_.block_size);
    std::vector<char> buf(8 + bs);
    uint64_t parent = params_.seed;
    for (size_t i = 0; i + bs <= text.size(); i += bs) {
      for (int b = 0; b < 8; ++b)
        buf[static_cast<size_t>(b)] = static_cast<char>(parent >> (8 * b));
      std::memcpy(buf.data() + 8, text.data() + i, bs);
      parent = XXH64(buf.data(), buf.size(), params_.seed);
      out.push_back(parent);
    }
    return out;
  }

  // Per pod, the match percentage (−1: no match).
  std::vector<int> Match(const std::vector<uint64_t>& hashes) const {
    std::vector<int> percent(running_.size(), -1);
    std::vector<bool> ready(running_.size(), true);
    const size_t n = hashes.size();
    for (size_t i = 0; i < n; ++i) {
      auto it = table_.find(hashes[i]);
      if (it == table_.end() || it->second.pods.empty()) break;
      bool any = false;
      for (size_t p = 0; p < ready.size(); ++p) {
        if (!ready[p]) continue;
        const auto& pods = it->second.pods;
        if (std::find(pods.begin(), pods.end(), static_cast<int>(p)) != pods.end()) {
          percent[p] = static_cast<int>((i + 1) * 100 / n);
          any = true;
        } else {
          ready[p] = false;
        }
      }
      if (!any) break;
    }
    return percent;
  }

  int PickMatched(const std::vector<int>& percent) {
    std::vector<int> pods;
    for (size_t p = 0; p < percent.size(); ++p) {
      if (percent[p] >= 0) pods.push_back(static_cast<int>(p));
    }
    if (pods.empty()) return -1;
    double n = static_cast<double>(running_.size());
    double mean =
        static_cast<double>(std::accumulate(running_.begin(), running_.end(), int64_t{0})) / n;
    double var = 0;
    for (int64_t c : running_)
      var += (static_cast<double>(c) - mean) * (static_cast<double>(c) - mean);
    double bar = mean + params_.standard_deviation_factor * std::sqrt(var / n);
    std::shuffle(pods.begin(), pods.end(), rng_);
    std::stable_sort(pods.begin(), pods.end(), [&](int a, int b) {
      auto pa = percent[static_cast<size_t>(a)], pb = percent[static_cast<size_t>(b)];
      if (pa != pb) return pa > pb;
      return running_[static_cast<size_t>(a)] < running_[static_cast<size_t>(b)];
    });
    for (int p : pods) {
      if (static_cast<double>(running_[static_cast<size_t>(p)]) <= bar) return p;
    }
    return -1;
  }

  int RandomLeastLoaded() {
    int64_t least = *std::min_element(running_.begin(), running_.end());
    std::vector<int> pods;
    for (size_t p = 0; p < running_.size(); ++p) {
      if (running_[p] == least) pods.push_back(static_cast<int>(p));
    }
    return pods[std::uniform_int_distribution<size_t>(0, pods.size() - 1)(rng_)];
  }

  void Put(uint64_t hash, int pod, double now) {
    auto [it, inserted] = table_.try_emplace(hash);
    Block& b = it->second;
    if (inserted) {
      lru_.push_front(hash);
      b.lru = lru_.begin();
    } else {
      lru_.splice(lru_.begin(), lru_, b.lru);
    }
    b.last_put = now;
    if (std::find(b.pods.begin(), b.pods.end(), pod) == b.pods.end()) b.pods.push_back(pod);
    if (static_cast<int64_t>(table_.size()) > params_.block_number) {
      table_.erase(lru_.back());
      lru_.pop_back();
    }
  }

  // The list is in last-write order, so the expired entries are at its back.
  void Evict(double now) {
    while (!lru_.empty()) {
      auto it = table_.find(lru_.back());
      if (now - it->second.last_put <= params_.eviction_duration_s) break;
      table_.erase(it);
      lru_.pop_back();
    }
  }

  std::string name_;
  AibrixPrefixCacheParams params_;
  std::vector<int64_t> running_;
  absl::flat_hash_map<uint64_t, Block> table_;
  std::list<uint64_t> lru_;  // most recently written first
  double next_eviction_ = 0;
  std::mt19937_64 rng_;
};

// ---- production-stack-prefixaware ----

class PrefixAwareRouter : public Router {
 public:
  PrefixAwareRouter(std::string name, int n, PrefixAwareParams p)
      : name_(std::move(name)), params_(p), n_(static_cast<size_t>(n)), rng_(p.seed) {
    root_.endpoints.assign(n_, false);
  }

  std::string Name() const override { return name_; }

  int Route(uint64_t, const WorkRequest& r, std::string_view) override {
    std::vector<uint64_t> chunks = Chunks(r.prompt);
    std::vector<bool> selected(n_, true);
    const Node* node = &root_;
    for (uint64_t c : chunks) {
      auto it = node->children.find(c);
      if (it == node->children.end()) break;
      node = it->second.get();
      std::vector<bool> both(n_);
      bool any = false;
      for (size_t e = 0; e < n_; ++e) {
        both[e] = selected[e] && node->endpoints[e];
        any = any || both[e];
      }
      if (!any) break;
      selected = std::move(both);
    }
    std::vector<int> candidates;
    for (size_t e = 0; e < n_; ++e) {
      if (selected[e]) candidates.push_back(static_cast<int>(e));
    }
    int chosen = candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_)];
    Node* at = &root_;
    at->endpoints[static_cast<size_t>(chosen)] = true;
    for (uint64_t c : chunks) {
      auto& child = at->children[c];
      if (!child) {
        child = std::make_unique<Node>();
        child->endpoints.assign(n_, false);
      }
      at = child.get();
      at->endpoints[static_cast<size_t>(chosen)] = true;
    }
    return chosen;
  }

 private:
  struct Node {
    absl::flat_hash_map<uint64_t, std::unique_ptr<Node>> children;
    std::vector<bool> endpoints;
  };

  std::vector<uint64_t> Chunks(const std::string& text) const {
    std::vector<uint64_t> out;
    const size_t cs = static_cast<size_t>(params_.chunk_size);
    for (size_t i = 0; i < text.size(); i += cs) {
      out.push_back(XXH64(text.data() + i, std::min(cs, text.size() - i), 0));
    }
    return out;
  }

  std::string name_;
  PrefixAwareParams params_;
  size_t n_;
  Node root_;
  std::mt19937_64 rng_;
};

}  // namespace

std::unique_ptr<Router> MakeCacheAwareRouter(std::string name, int servers,
                                             CacheAwareParams params) {
  return std::make_unique<CacheAwareRouter>(std::move(name), servers, params);
}

std::unique_ptr<Router> MakeDynamoKvRouter(std::string name, int servers, DynamoKvParams params) {
  return std::make_unique<DynamoKvRouter>(std::move(name), servers, params);
}

std::unique_ptr<Router> MakeAibrixPrefixCacheRouter(std::string name, int servers,
                                                    AibrixPrefixCacheParams params) {
  return std::make_unique<AibrixPrefixCacheRouter>(std::move(name), servers, params);
}

std::unique_ptr<Router> MakeProductionStackPrefixAwareRouter(std::string name, int servers,
                                                             PrefixAwareParams params) {
  return std::make_unique<PrefixAwareRouter>(std::move(name), servers, params);
}

}  // namespace epp::sim
