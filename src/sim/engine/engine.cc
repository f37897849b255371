#include "sim/engine/engine.h"

#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <cstring>

#include "common/strings.h"

namespace epp::sim {

struct Engine::Request {
  RequestSpec spec;
  std::vector<TokenId> tokens;  // prompt, then the tokens sampled so far
  int prompt_len = 0;
  int num_computed = 0;
  int outputs = 0;
  int cached_tokens = -1;  // set at the first admission
  int preemptions = 0;
  std::vector<BlockId> blocks;
  std::vector<BlockHash> hashes;  // of the full blocks of `tokens`
  int num_cached_blocks = 0;      // blocks[0..n) have been offered to the cache
  enum class State { kPending, kWaiting, kRunning } state = State::kPending;
  bool aborted = false;
  absl::Time arrival, ready, queued, first_scheduled, first_token;
  bool scheduled_once = false;
};

namespace {

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// A synthetic sampled token: deterministic per (request, position), disjoint from nothing in
// particular; only its presence in full blocks matters.
TokenId SyntheticToken(uint64_t id, int index) {
  uint64_t x = id * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<TokenId>(x);
}

}  // namespace

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kNone:
      break;
  }
  return "";
}

absl::Status ValidateEngineConfig(const EngineConfig& c) {
  auto bad = [](std::string_view field, std::string_view why) {
    return absl::InvalidArgumentError(StrCat(field, ": ", why));
  };
  if (c.max_num_seqs < 1) return bad("max_num_seqs", "must be at least 1");
  if (c.max_num_batched_tokens < 1) return bad("max_num_batched_tokens", "must be at least 1");
  if (c.block_size < 1) return bad("block_size", "must be at least 1");
  if (c.num_gpu_blocks < 2) return bad("num_gpu_blocks", "must be at least 2");
  if (c.max_model_len < 1) return bad("max_model_len", "must be at least 1");
  int64_t capacity = static_cast<int64_t>(c.num_gpu_blocks - 1) * c.block_size;
  if (c.max_model_len > capacity) {
    return bad("max_model_len",
               StrCat(c.max_model_len, " tokens do not fit the KV cache (", c.num_gpu_blocks - 1,
                      " usable blocks of ", c.block_size, " tokens = ", capacity, " tokens)"));
  }
  if (c.enable_lora && c.max_loras < 1) return bad("max_loras", "must be at least 1");
  if (c.max_cpu_loras != 0 && c.max_cpu_loras < c.max_loras) {
    return bad("max_cpu_loras", "must be at least max_loras");
  }
  if (c.cost.lora_factor < 0) return bad("lora_factor", "must not be negative");
  return absl::OkStatus();
}

Engine::Engine(EngineConfig config)
    : config_(std::move(config)), pool_(config_.num_gpu_blocks, config_.enable_prefix_caching) {
  if (config_.max_cpu_loras == 0) config_.max_cpu_loras = config_.max_loras;
}

Engine::~Engine() = default;

absl::Status Engine::Submit(RequestSpec spec, absl::Time now) {
  if (spec.prompt.empty()) return absl::InvalidArgumentError("prompt: must not be empty");
  if (spec.max_tokens < 1) return absl::InvalidArgumentError("max_tokens: must be at least 1");
  int64_t total = static_cast<int64_t>(spec.prompt.size()) + spec.max_tokens;
  if (total > config_.max_model_len) {
    return absl::InvalidArgumentError(
        StrCat("This model's maximum context length is ", config_.max_model_len,
               " tokens. However, you requested ", total, " tokens (", spec.prompt.size(),
               " in the messages, ", spec.max_tokens,
               " in the completion). Please reduce the length of the messages or completion."));
  }
  if (!spec.lora.empty() && !config_.enable_lora) {
    return absl::InvalidArgumentError("lora: LoRA is not enabled on this engine");
  }
  if (requests_.contains(spec.id)) {
    return absl::AlreadyExistsError(StrCat("request id ", spec.id, " is already in use"));
  }
  auto r = std::make_unique<Request>();
  r->prompt_len = static_cast<int>(spec.prompt.size());
  r->tokens = spec.prompt;
  r->tokens.reserve(spec.prompt.size() + static_cast<size_t>(spec.max_tokens));
  r->spec = std::move(spec);
  r->arrival = now;
  r->ready = now + config_.cost.frontend_overhead;
  Request* raw = r.get();
  requests_.emplace(raw->spec.id, std::move(r));
  pending_.push_back(raw);
  return absl::OkStatus();
}

void Engine::ExtendHashes(Request& r) {
  const size_t bs = static_cast<size_t>(config_.block_size);
  const size_t full = r.tokens.size() / bs;
  std::string buf;
  while (r.hashes.size() < full) {
    size_t i = r.hashes.size();
    BlockHash parent = i == 0 ? 0 : r.hashes[i - 1];
    buf.clear();
    buf.append(reinterpret_cast<const char*>(&parent), sizeof(parent));
    buf.append(reinterpret_cast<const char*>(r.tokens.data() + i * bs), bs * sizeof(TokenId));
    // Extra keys as vLLM has them: the adapter on every block, the salt on the first only.
    buf.push_back('\x01');
    buf.append(r.spec.lora);
    if (i == 0) {
      buf.push_back('\x02');
      buf.append(r.spec.cache_salt);
    }
    r.hashes.push_back(XXH3_64bits(buf.data(), buf.size()));
  }
}

void Engine::CacheFullBlocks(Request& r, int num_tokens) {
  if (!config_.enable_prefix_caching) return;
  int full = std::min<int>(num_tokens, static_cast<int>(r.tokens.size())) / config_.block_size;
  if (full <= r.num_cached_blocks) return;
  ExtendHashes(r);
  for (int i = r.num_cached_blocks; i < full; ++i) pool_.Cache(r.blocks[i], r.hashes[i]);
  r.num_cached_blocks = full;
}

bool Engine::AllocateSlots(Request& r, int num_new_tokens, std::span<const BlockId> hits) {
  const int bs = config_.block_size;
  const int hit_tokens = static_cast<int>(hits.size()) * bs;
  const int total = r.num_computed + hit_tokens + num_new_tokens;
  const int needed_blocks = (total + bs - 1) / bs;
  const int to_allocate =
      needed_blocks - static_cast<int>(r.blocks.size()) - static_cast<int>(hits.size());
  int evictable_hits = 0;
  for (BlockId b : hits) evictable_hits += pool_.ref_count(b) == 0 ? 1 : 0;
  if (to_allocate > pool_.num_free() - evictable_hits) return false;
  pool_.Touch(hits);
  r.blocks.insert(r.blocks.end(), hits.begin(), hits.end());
  if (to_allocate > 0) pool_.Take(to_allocate, &r.blocks);
  CacheFullBlocks(r, total);
  return true;
}

void Engine::FreeBlocks(Request& r) {
  // Last block first, so the request's suffix is evicted before its (shared) prefix.
  std::vector<BlockId> reversed(r.blocks.rbegin(), r.blocks.rend());
  pool_.Free(reversed);
  r.blocks.clear();
  r.num_cached_blocks = 0;
}

void Engine::Preempt(Request& r) {
  FreeBlocks(r);
  r.num_computed = 0;
  r.state = Request::State::kWaiting;
  ++r.preemptions;
  ++preemptions_;
  waiting_.push_front(&r);
}

void Engine::MovePendingToWaiting(absl::Time now) {
  while (!pending_.empty() && pending_.front()->ready <= now) {
    Request* r = pending_.front();
    pending_.pop_front();
    r->state = Request::State::kWaiting;
    r->queued = r->ready;
    waiting_.push_back(r);
  }
}

bool Engine::CpuLoraReady(const std::string& name, absl::Time now) {
  for (auto it = cpu_loras_.begin(); it != cpu_loras_.end(); ++it) {
    if (it->name != name) continue;
    if (it->ready > now) return false;
    cpu_loras_.splice(cpu_loras_.begin(), cpu_loras_, it);
    return true;
  }
  LoadLora(name, now);
  return false;
}

bool Engine::MakeCpuLoraRoom(absl::Time now) {
  if (static_cast<int>(cpu_loras_.size()) < config_.max_cpu_loras) return true;
  // The least recently used adapter that is loaded and that no running or waiting request
  // needs. Evicting one that is loading or wanted could make two adapters evict each other
  // forever; waiting for a free one instead always progresses (the wanted ones can run).
  auto wanted = [&](const std::string& lora) {
    auto uses = [&](const Request* r) { return r->spec.lora == lora; };
    return std::any_of(running_.begin(), running_.end(), uses) ||
           std::any_of(waiting_.begin(), waiting_.end(), uses);
  };
  for (auto it = cpu_loras_.rbegin(); it != cpu_loras_.rend(); ++it) {
    if (it->ready > now || wanted(it->name)) continue;
    gpu_slots_.remove(it->name);
    cpu_loras_.erase(std::next(it).base());
    return true;
  }
  return false;
}

void Engine::LoadLora(const std::string& name, absl::Time now) {
  for (const auto& l : cpu_loras_) {
    if (l.name == name) return;
  }
  // With no room the adapter is not loaded now; a request for it loads it once there is.
  if (!MakeCpuLoraRoom(now)) return;
  cpu_loras_.push_front({name, now + config_.cost.lora_load});
}

void Engine::UnloadLora(const std::string& name) {
  cpu_loras_.remove_if([&](const CpuLora& l) { return l.name == name; });
  gpu_slots_.remove(name);
}

void Engine::TouchGpuSlot(const std::string& lora) {
  auto slot = std::find(gpu_slots_.begin(), gpu_slots_.end(), lora);
  if (slot != gpu_slots_.end()) {
    gpu_slots_.splice(gpu_slots_.begin(), gpu_slots_, slot);
    return;
  }
  gpu_slots_.push_front(lora);
  // The batch's adapters (at most max_loras) were touched first, so the one dropped is not
  // in use.
  if (static_cast<int>(gpu_slots_.size()) > config_.max_loras) gpu_slots_.pop_back();
}

bool Engine::LoraAdmissible(const Request& r, absl::Time now, std::vector<std::string>* batch_loras,
                            absl::Duration* activate_cost) {
  const std::string& lora = r.spec.lora;
  if (lora.empty()) return true;
  bool in_batch = Contains(*batch_loras, lora);
  if (!in_batch && static_cast<int>(batch_loras->size()) >= config_.max_loras) return false;
  if (!CpuLoraReady(lora, now)) return false;
  if (!in_batch) {
    batch_loras->push_back(lora);
    if (std::find(gpu_slots_.begin(), gpu_slots_.end(), lora) == gpu_slots_.end()) {
      *activate_cost += config_.cost.lora_activate;
    }
  }
  return true;
}

std::optional<absl::Time> Engine::StartStep(absl::Time now) {
  assert(!in_flight_);
  MovePendingToWaiting(now);
  batch_.clear();
  int budget = config_.max_num_batched_tokens;
  bool preempted = false;

  // 1. Running requests, in order.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Request* r = running_[i];
    int n = std::min(static_cast<int>(r->tokens.size()) - r->num_computed, budget);
    bool self_preempted = false;
    while (!AllocateSlots(*r, n, {})) {
      Request* victim = running_.back();
      running_.pop_back();
      Preempt(*victim);
      preempted = true;
      if (victim == r) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;
    batch_.push_back({r, n});
    budget -= n;
    ++i;
  }

  // 2. Waiting requests, FCFS, only when nothing was preempted (or nothing else can run).
  std::vector<std::string> batch_loras;
  for (const auto& s : batch_) {
    if (!s.req->spec.lora.empty() && !Contains(batch_loras, s.req->spec.lora)) {
      batch_loras.push_back(s.req->spec.lora);
    }
  }
  for (const auto& l : batch_loras) TouchGpuSlot(l);
  absl::Duration activate_cost;
  if (!preempted || batch_.empty()) {
    std::vector<Request*> skipped;
    const int bs = config_.block_size;
    while (!waiting_.empty() && budget > 0 &&
           static_cast<int>(running_.size()) < config_.max_num_seqs) {
      Request* r = waiting_.front();
      std::vector<std::string> loras_if_admitted = batch_loras;
      absl::Duration cost_if_admitted = activate_cost;
      if (!LoraAdmissible(*r, now, &loras_if_admitted, &cost_if_admitted)) {
        skipped.push_back(r);
        waiting_.pop_front();
        continue;
      }
      const int total = static_cast<int>(r->tokens.size());
      std::vector<BlockId> hits;
      if (config_.enable_prefix_caching) {
        ExtendHashes(*r);
        size_t max_blocks =
            std::min<size_t>(static_cast<size_t>((total - 1) / bs), r->hashes.size());
        int n_hit = pool_.MatchPrefix(std::span(r->hashes).first(max_blocks));
        for (int b = 0; b < n_hit; ++b) hits.push_back(*pool_.Lookup(r->hashes[b]));
        prefix_queries_ += static_cast<uint64_t>(total);
        prefix_hits_ += static_cast<uint64_t>(n_hit) * static_cast<uint64_t>(bs);
      }
      const int hit_tokens = static_cast<int>(hits.size()) * bs;
      const int n = std::min(total - hit_tokens, budget);
      if (!AllocateSlots(*r, n, hits)) break;  // out of KV blocks: head-of-line blocking
      waiting_.pop_front();
      if (!r->spec.lora.empty()) TouchGpuSlot(r->spec.lora);  // only once really admitted
      batch_loras = std::move(loras_if_admitted);
      activate_cost = cost_if_admitted;
      r->num_computed = hit_tokens;
      if (r->cached_tokens < 0) r->cached_tokens = std::min(hit_tokens, r->prompt_len);
      if (!r->scheduled_once) {
        r->scheduled_once = true;
        r->first_scheduled = now;
      }
      r->state = Request::State::kRunning;
      running_.push_back(r);
      batch_.push_back({r, n});
      budget -= n;
    }
    waiting_.insert(waiting_.begin(), skipped.begin(), skipped.end());
  }
  if (batch_.empty()) return std::nullopt;

  // 3. Step time.
  int prefill_tokens = 0;
  int decode_seqs = 0;
  int64_t decode_ctx = 0;
  for (const auto& s : batch_) {
    const Request& r = *s.req;
    bool decoding =
        s.tokens == 1 && r.outputs > 0 && r.num_computed + 1 == static_cast<int>(r.tokens.size());
    if (decoding) {
      ++decode_seqs;
      decode_ctx += static_cast<int64_t>(r.tokens.size());
    } else {
      prefill_tokens += s.tokens;
    }
  }
  const CostModel& c = config_.cost;
  absl::Duration t = c.step_base + c.per_prefill_token * prefill_tokens +
                     c.per_decode_seq * decode_seqs +
                     c.per_decode_kctx * (static_cast<double>(decode_ctx) / 1000.0);
  if (!batch_loras.empty()) {
    t *= 1.0 + c.lora_factor * static_cast<double>(batch_loras.size());
  }
  t += activate_cost;
  in_flight_ = true;
  step_start_ = now;
  step_end_ = now + t;
  return step_end_;
}

TokenEvent Engine::MakeEvent(const Request& r) const {
  TokenEvent e;
  e.id = r.spec.id;
  e.prompt_tokens = r.prompt_len;
  e.output_tokens = r.outputs;
  e.cached_tokens = std::max(r.cached_tokens, 0);
  e.preemptions = r.preemptions;
  e.arrival = r.arrival;
  e.queued = r.queued;
  e.first_scheduled = r.first_scheduled;
  e.first_token_time = r.first_token;
  return e;
}

StepResult Engine::FinishStep() {
  assert(in_flight_);
  in_flight_ = false;
  StepResult out;
  out.start = step_start_;
  out.end = step_end_;
  out.events = std::move(aborted_);
  aborted_.clear();
  std::vector<Request*> finished;
  for (const auto& s : batch_) {
    Request& r = *s.req;
    out.scheduled_tokens += s.tokens;
    if (r.aborted) continue;
    bool decoding = s.tokens == 1 && r.outputs > 0;
    if (decoding) {
      ++out.decode_seqs;
    } else {
      out.prefill_tokens += s.tokens;
    }
    r.num_computed += s.tokens;
    if (r.num_computed < static_cast<int>(r.tokens.size())) continue;  // prefill chunk
    TokenEvent e;
    if (r.outputs == 0) {
      r.first_token = step_end_;
      prompt_tokens_ += static_cast<uint64_t>(r.prompt_len);
      prompt_tokens_cached_ += static_cast<uint64_t>(std::max(r.cached_tokens, 0));
    }
    r.tokens.push_back(SyntheticToken(r.spec.id, r.outputs));
    ++r.outputs;
    ++generation_tokens_;
    FinishReason reason = FinishReason::kNone;
    if (!r.spec.ignore_eos && r.spec.eos_after > 0 && r.outputs >= r.spec.eos_after &&
        r.spec.eos_after < r.spec.max_tokens) {
      reason = FinishReason::kStop;
    } else if (r.outputs >= r.spec.max_tokens ||
               static_cast<int>(r.tokens.size()) >= config_.max_model_len) {
      reason = FinishReason::kLength;
    }
    e = MakeEvent(r);
    e.new_tokens = 1;
    e.first_token = r.outputs == 1;
    e.finish = reason;
    out.events.push_back(e);
    if (reason != FinishReason::kNone) finished.push_back(&r);
  }
  for (const auto& s : batch_) {
    if (s.req->aborted) finished.push_back(s.req);
  }
  batch_.clear();
  for (Request* r : finished) {
    if (r->aborted) {
      TokenEvent e = MakeEvent(*r);
      e.finish = FinishReason::kAbort;
      out.events.push_back(e);
    }
    Remove(r);
  }
  // Running requests aborted while not in the batch.
  std::vector<Request*> stale;
  for (Request* r : running_) {
    if (r->aborted) stale.push_back(r);
  }
  for (Request* r : stale) {
    TokenEvent e = MakeEvent(*r);
    e.finish = FinishReason::kAbort;
    out.events.push_back(e);
    Remove(r);
  }
  return out;
}

void Engine::Remove(Request* r) {
  if (r->state == Request::State::kRunning) {
    FreeBlocks(*r);
    running_.erase(std::find(running_.begin(), running_.end(), r));
  } else if (r->state == Request::State::kWaiting) {
    FreeBlocks(*r);
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), r));
  } else {
    pending_.erase(std::find(pending_.begin(), pending_.end(), r));
  }
  requests_.erase(r->spec.id);
}

std::optional<TokenEvent> Engine::Abort(uint64_t id) {
  auto it = requests_.find(id);
  if (it == requests_.end()) return std::nullopt;
  Request* r = it->second.get();
  if (r->aborted) return std::nullopt;
  if (in_flight_ && r->state == Request::State::kRunning) {
    r->aborted = true;  // reported by FinishStep
    return std::nullopt;
  }
  TokenEvent e = MakeEvent(*r);
  e.finish = FinishReason::kAbort;
  Remove(r);
  return e;
}

std::optional<absl::Time> Engine::NextWakeTime() const {
  std::optional<absl::Time> t;
  if (!pending_.empty()) t = pending_.front()->ready;
  if (!waiting_.empty()) {
    for (const auto& l : cpu_loras_) {
      bool wanted = std::any_of(waiting_.begin(), waiting_.end(),
                                [&](const Request* r) { return r->spec.lora == l.name; });
      if (wanted && (!t || l.ready < *t)) t = l.ready;
    }
  }
  return t;
}

bool Engine::idle() const { return requests_.empty(); }

EngineStats Engine::Stats() const {
  EngineStats s;
  s.running = static_cast<int>(running_.size());
  s.waiting = static_cast<int>(waiting_.size());
  s.kv_usage = pool_.Usage();
  s.prefix_queries = prefix_queries_;
  s.prefix_hits = prefix_hits_;
  s.prompt_tokens = prompt_tokens_;
  s.prompt_tokens_cached = prompt_tokens_cached_;
  s.generation_tokens = generation_tokens_;
  s.preemptions = preemptions_;
  s.evictions = pool_.evictions();
  int deferred = 0;
  for (const Request* r : running_) {
    if (!r->spec.lora.empty() && !Contains(s.running_loras, r->spec.lora)) {
      s.running_loras.push_back(r->spec.lora);
    }
  }
  for (const Request* r : waiting_) {
    if (r->spec.lora.empty()) continue;
    if (!Contains(s.waiting_loras, r->spec.lora)) s.waiting_loras.push_back(r->spec.lora);
    if (!Contains(s.running_loras, r->spec.lora)) ++deferred;
  }
  s.waiting_for_capacity = s.waiting - deferred;
  std::sort(s.running_loras.begin(), s.running_loras.end());
  std::sort(s.waiting_loras.begin(), s.waiting_loras.end());
  return s;
}

}  // namespace epp::sim
