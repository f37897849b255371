// The cluster simulator: N simulated vLLM engines in one process, in virtual time, behind a
// Router (epp's real scheduler or a baseline), with each engine's metrics "scraped" every
// scrape_interval as epp's data layer would see them. Deterministic for a given workload and
// seed; hours of traffic run in seconds.
#ifndef EPP_SIM_CLUSTER_CLUSTER_H_
#define EPP_SIM_CLUSTER_CLUSTER_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "loadgen/workload.h"
#include "sim/cluster/routers.h"
#include "sim/engine/engine.h"

namespace epp::sim {

struct ClusterConfig {
  int servers = 8;
  EngineConfig engine;
  // Adapters every server knows (multi-LoRA workloads); loaded on demand by the engines.
  bool enable_lora = false;
  absl::Duration scrape_interval = absl::Milliseconds(50);
  uint64_t seed = 1;  // seeds the scheduler's random draws on the running thread
};

struct ClusterResult {
  std::string router;
  int requests = 0;
  int completed = 0;
  double ttft_mean_s = 0, ttft_p50_s = 0, ttft_p90_s = 0, ttft_p99_s = 0;
  double e2e_p50_s = 0, e2e_p90_s = 0;
  double tpot_mean_s = 0;          // (e2e − ttft) / (outputs − 1), mean over requests
  double output_tokens_per_s = 0;  // over the makespan
  double makespan_s = 0;
  double prefix_hit_rate = 0;  // hits / queries over all engines (vLLM's counters)
  uint64_t preemptions = 0;
  std::vector<int> per_server;  // requests routed to each server
};

ClusterResult RunCluster(const ClusterConfig& config,
                         const std::vector<loadgen::WorkRequest>& workload, Router& router);

// One markdown table row per result (header from ResultTableHeader()).
std::string ResultTableHeader();
std::string ResultTableRow(const ClusterResult& r);

}  // namespace epp::sim

#endif  // EPP_SIM_CLUSTER_CLUSTER_H_
