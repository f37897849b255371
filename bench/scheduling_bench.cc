// One scheduling cycle with the default profile (queue 2, KV cache 2, prefix 3: producers,
// scorers, max-score picker, then the prefix index update), and the prefix index alone.
//
// The cycle runs the way the Director runs it: a parsed completions request whose prompt is a
// shared system prompt (one of 32 groups) plus a question of its own, over N endpoints with
// varied queue and KV metrics, against an index that already holds every group on some
// endpoint. Besides Google Benchmark's mean, each cycle is timed and the p50/p99 reported as
// counters (in microseconds).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "config/endpoint_picker_config.h"
#include "request/openai_request.h"
#include "scheduling/plugins/prefix/prefix_index.h"
#include "scheduling/plugins/register.h"
#include "scheduling/scheduler.h"

namespace epp {
namespace {

constexpr char kDefaultConfig[] = R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins: []
)";

struct Cycle {
  Cycle(int endpoints, int prompt_tokens) {
    scheduling::RegisterSchedulingPlugins(registry);
    auto cfg = config::ParseEndpointPickerConfig(kDefaultConfig);
    plugins = *config::InstantiatePlugins(*cfg, registry);
    scheduler = *scheduling::BuildScheduler(*cfg, *plugins, registry);
    std::mt19937_64 rng(1);
    for (int i = 0; i < endpoints; ++i) {
      auto e = std::make_shared<datastore::Endpoint>(datastore::MakeEndpoint(
          "pod-" + std::to_string(i), "default",
          "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1), 8000));
      datastore::Metrics m;
      m.waiting_queue_size = static_cast<int64_t>(rng() % 8);
      m.running_requests_size = static_cast<int64_t>(rng() % 64);
      m.kv_cache_usage_percent = static_cast<double>(rng() % 100) / 100.0;
      m.cache_block_size = 16;
      m.cache_num_gpu_blocks = 26000;
      m.update_time = std::chrono::system_clock::now();
      e->metrics->Store(std::make_shared<const datastore::Metrics>(m));
      pool.endpoints.push_back(e);
      candidates.push_back(e.get());
    }
    pool.version = 1;
    // Bodies: 32 groups × 8 questions; the system prompt is 3/4 of the prompt.
    const size_t chars = static_cast<size_t>(prompt_tokens) * 4;
    for (int g = 0; g < 32; ++g) {
      std::string system;
      while (system.size() < chars * 3 / 4) system += "group " + std::to_string(g) + " policy. ";
      for (int q = 0; q < 8; ++q) {
        std::string question;
        while (question.size() < chars / 4) question += "question " + std::to_string(q) + "? ";
        bodies.push_back("{\"model\":\"llama\",\"prompt\":\"" + system + question + "\"}");
      }
    }
    for (auto& b : bodies) {
      b.reserve(b.size() + request::ParsePaddingBytes());
      parsed.push_back(*request::ParseRequest(request::ApiKind::kCompletions, b, b.capacity()));
    }
    // Warm the index: every request once, as traffic would have.
    for (size_t i = 0; i < bodies.size(); ++i) Run(i);
  }

  void Run(size_t i) {
    scheduling::Request req;
    req.id = ++next_id;
    req.target_model = "llama";
    req.body = bodies[i];
    req.parsed = &parsed[i];
    req.pool = &pool;
    auto r = scheduler->Schedule(req, candidates);
    benchmark::DoNotOptimize(r);
  }

  PluginRegistry registry;
  std::unique_ptr<config::PluginSet> plugins;
  std::unique_ptr<scheduling::Scheduler> scheduler;
  datastore::Snapshot pool;
  std::vector<const datastore::Endpoint*> candidates;
  std::vector<std::string> bodies;
  std::vector<request::ParsedRequest> parsed;
  uint64_t next_id = 0;
};

void BM_SchedulingCycle(benchmark::State& state) {
  Cycle c(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  std::vector<double> us;
  us.reserve(1 << 20);
  size_t i = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    c.Run(i++ % c.bodies.size());
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  state.counters["p50_us"] = us[us.size() / 2];
  state.counters["p99_us"] = us[us.size() * 99 / 100];
}
BENCHMARK(BM_SchedulingCycle)
    ->ArgNames({"endpoints", "prompt_tokens"})
    ->Args({10, 1024})
    ->Args({100, 1024})
    ->Args({1000, 1024})
    ->Args({10, 8192})
    ->Args({100, 8192})
    ->Args({1000, 8192})
    ->Args({100, 32768})
    ->Args({1000, 32768})
    ->Unit(benchmark::kMicrosecond);

std::vector<uint64_t> Blocks(uint64_t seed, int n) {
  std::vector<uint64_t> h(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    h[static_cast<size_t>(i)] = seed * 1'000'003 + static_cast<uint64_t>(i);
  return h;
}

// Recording a 256-block prompt for an endpoint (new blocks; the LRU evicts at capacity).
void BM_PrefixIndexInsert(benchmark::State& state) {
  scheduling::PrefixIndex idx;
  uint64_t seed = 0;
  for (auto _ : state) {
    auto h = Blocks(++seed, 256);
    idx.Insert("pod-" + std::to_string(seed % 100), h, 31250);
  }
  state.counters["entries"] = static_cast<double>(idx.entries());
  state.counters["bytes_per_entry"] =
      static_cast<double>(idx.MemoryBytes()) / static_cast<double>(idx.entries());
}
BENCHMARK(BM_PrefixIndexInsert)->Unit(benchmark::kMicrosecond);

// Matching a 256-block prompt held by 10 of 100 endpoints, against a full index (100 endpoints ×
// 31,250 blocks = 3.1M entries): the memory per entry at capacity.
void BM_PrefixIndexMatch(benchmark::State& state) {
  scheduling::PrefixIndex idx;
  for (int s = 0; s < 100; ++s) {
    for (int p = 0; p < 122; ++p) {
      idx.Insert("pod-" + std::to_string(s), Blocks(static_cast<uint64_t>(s * 1000 + p), 256),
                 31250);
    }
  }
  auto shared = Blocks(999'999, 256);
  for (int s = 0; s < 10; ++s) idx.Insert("pod-" + std::to_string(s * 10), shared, 31250);
  std::vector<std::string> names;
  for (int s = 0; s < 100; ++s) names.push_back("pod-" + std::to_string(s));
  std::vector<std::string_view> views(names.begin(), names.end());
  for (auto _ : state) {
    auto m = idx.Match(shared, views);
    benchmark::DoNotOptimize(m);
  }
  state.counters["entries"] = static_cast<double>(idx.entries());
  state.counters["bytes_per_entry"] =
      static_cast<double>(idx.MemoryBytes()) / static_cast<double>(idx.entries());
}
BENCHMARK(BM_PrefixIndexMatch)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace epp

BENCHMARK_MAIN();
