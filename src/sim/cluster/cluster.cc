#include "sim/cluster/cluster.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>

#include "common/strings.h"
#include "scheduling/plugins/thread_rng.h"
#include "sim/engine/tokenizer.h"

namespace epp::sim {

using loadgen::CompletionBody;
using loadgen::WorkRequest;

namespace {

struct Server {
  explicit Server(const EngineConfig& c) : engine(c) {}
  Engine engine;
  std::optional<absl::Time> step_end;
  std::optional<absl::Time> wake;
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

datastore::Metrics ToMetrics(const Engine& e) {
  EngineStats s = e.Stats();
  datastore::Metrics m;
  m.waiting_queue_size = s.waiting;
  m.running_requests_size = s.running;
  m.kv_cache_usage_percent = s.kv_usage;
  for (const auto& a : s.running_loras) m.active_models[a] = 1;
  for (const auto& w : s.waiting_loras) m.waiting_models[w] = 1;
  m.max_active_models = e.config().enable_lora ? e.config().max_loras : 0;
  m.cache_block_size = e.config().block_size;
  m.cache_num_gpu_blocks = e.config().num_gpu_blocks;
  // Real time, so staleness checks (which read the real clock) see fresh metrics.
  m.update_time = std::chrono::system_clock::now();
  return m;
}

}  // namespace

ClusterResult RunCluster(const ClusterConfig& config, const std::vector<WorkRequest>& workload,
                         Router& router) {
  const absl::Time t0 = absl::FromUnixSeconds(1'700'000'000);
  scheduling::SeedThreadRng(config.seed);  // the scheduler's random tie-breaks, reproducibly
  EngineConfig ec = config.engine;
  ec.enable_lora = ec.enable_lora || config.enable_lora;
  std::vector<std::unique_ptr<Server>> servers;
  for (int i = 0; i < config.servers; ++i) servers.push_back(std::make_unique<Server>(ec));

  ClusterResult result;
  result.router = router.Name();
  result.requests = static_cast<int>(workload.size());
  result.per_server.assign(static_cast<size_t>(config.servers), 0);
  std::set<uint64_t> inflight;  // submitted, not finished
  std::vector<double> ttft, e2e, tpot;
  uint64_t output_tokens = 0;
  size_t next = 0;
  absl::Time next_scrape = t0;
  absl::Time now = t0;
  absl::Time last_finish = t0;

  auto busy = [&] {
    return std::any_of(servers.begin(), servers.end(),
                       [](const auto& s) { return !s->engine.idle(); });
  };
  auto arrival_time = [&](size_t i) { return t0 + absl::Seconds(workload[i].arrival_s); };

  while (true) {
    bool work_left = next < workload.size() || busy();
    if (!work_left) break;
    absl::Time t = absl::InfiniteFuture();
    if (next < workload.size()) t = arrival_time(next);
    t = std::min(t, next_scrape);
    for (const auto& s : servers) {
      if (s->step_end) t = std::min(t, *s->step_end);
      if (s->wake) t = std::min(t, *s->wake);
    }
    now = t;

    // 1. Steps ending now.
    for (size_t si = 0; si < servers.size(); ++si) {
      Server& s = *servers[si];
      if (!s.step_end || *s.step_end != now) continue;
      s.step_end.reset();
      for (const TokenEvent& e : s.engine.FinishStep().events) {
        auto it = inflight.find(e.id);
        if (it == inflight.end()) continue;
        if (e.first_token) {
          ttft.push_back(absl::ToDoubleSeconds(e.first_token_time - e.arrival));
          router.FirstToken(e.id, static_cast<int>(si));
        }
        if (e.new_tokens > 0) ++output_tokens;
        if (e.finish == FinishReason::kNone) continue;
        double total = absl::ToDoubleSeconds(now - e.arrival);
        e2e.push_back(total);
        if (e.output_tokens > 1) {
          tpot.push_back(absl::ToDoubleSeconds(now - e.first_token_time) / (e.output_tokens - 1));
        }
        ++result.completed;
        last_finish = now;
        router.Completed(e.id, static_cast<int>(si));
        inflight.erase(it);
      }
    }
    // 2. Arrivals now.
    while (next < workload.size() && arrival_time(next) <= now) {
      const WorkRequest& r = workload[next];
      uint64_t id = next + 1;
      int server = router.Route(id, r, CompletionBody(r, false));
      server = std::clamp(server, 0, config.servers - 1);
      ++result.per_server[static_cast<size_t>(server)];
      RequestSpec spec;
      spec.id = id;
      spec.prompt = Tokenize(r.prompt);
      spec.max_tokens = r.max_tokens;
      spec.ignore_eos = true;
      if (r.model.rfind("adapter-", 0) == 0) spec.lora = r.model;
      if (spec.prompt.size() + static_cast<size_t>(spec.max_tokens) >
          static_cast<size_t>(ec.max_model_len)) {
        spec.max_tokens = std::max(1, ec.max_model_len - static_cast<int>(spec.prompt.size()));
      }
      if (servers[static_cast<size_t>(server)]->engine.Submit(std::move(spec), now).ok()) {
        inflight.insert(id);
      } else {
        router.Completed(id, server);
      }
      ++next;
    }
    // 3. Scrapes.
    if (now >= next_scrape) {
      for (size_t si = 0; si < servers.size(); ++si) {
        router.Scraped(static_cast<int>(si), ToMetrics(servers[si]->engine));
      }
      next_scrape = now + config.scrape_interval;
    }
    // 4. Idle engines start their next step (or sleep until something becomes runnable).
    for (auto& s : servers) {
      if (s->step_end) continue;
      s->wake.reset();
      s->step_end = s->engine.StartStep(now);
      if (!s->step_end) s->wake = s->engine.NextWakeTime();
    }
  }

  uint64_t hits = 0, queries = 0;
  for (const auto& s : servers) {
    EngineStats st = s->engine.Stats();
    hits += st.prefix_hits;
    queries += st.prefix_queries;
    result.preemptions += st.preemptions;
  }
  result.prefix_hit_rate = queries ? static_cast<double>(hits) / static_cast<double>(queries) : 0;
  result.makespan_s = absl::ToDoubleSeconds(last_finish - t0);
  result.output_tokens_per_s =
      result.makespan_s > 0 ? static_cast<double>(output_tokens) / result.makespan_s : 0;
  double sum = 0;
  for (double v : ttft) sum += v;
  result.ttft_mean_s = ttft.empty() ? 0 : sum / static_cast<double>(ttft.size());
  result.ttft_p50_s = Percentile(ttft, 0.5);
  result.ttft_p90_s = Percentile(ttft, 0.9);
  result.ttft_p99_s = Percentile(ttft, 0.99);
  result.e2e_p50_s = Percentile(e2e, 0.5);
  result.e2e_p90_s = Percentile(e2e, 0.9);
  double tsum = 0;
  for (double v : tpot) tsum += v;
  result.tpot_mean_s = tpot.empty() ? 0 : tsum / static_cast<double>(tpot.size());
  return result;
}

std::string ResultTableHeader() {
  return "| router | done | TTFT mean | TTFT p50 | TTFT p90 | TTFT p99 | e2e p90 | TPOT mean | "
         "output tok/s | prefix hit | preemptions | requests per server |\n"
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
}

std::string ResultTableRow(const ClusterResult& r) {
  return fmt::format(
      "| {} | {}/{} | {:.3f} s | {:.3f} s | {:.3f} s | {:.3f} s | {:.2f} s | {:.1f} ms | {:.0f} | "
      "{:.1f}% | {} | {} |\n",
      r.router, r.completed, r.requests, r.ttft_mean_s, r.ttft_p50_s, r.ttft_p90_s, r.ttft_p99_s,
      r.e2e_p90_s, 1000 * r.tpot_mean_s, r.output_tokens_per_s, 100 * r.prefix_hit_rate,
      r.preemptions, StrJoin(r.per_server, " "));
}

}  // namespace epp::sim
