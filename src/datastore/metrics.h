// Metrics: what one model server last reported, as the data layer extracted it. Immutable once
// published; each endpoint has its own cell, replaced whole on every successful scrape.
#ifndef EPP_DATASTORE_METRICS_H_
#define EPP_DATASTORE_METRICS_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

namespace epp::datastore {

struct Metrics {
  int64_t waiting_queue_size = 0;             // requests queued in the server
  int64_t running_requests_size = 0;          // requests in the running batch
  double kv_cache_usage_percent = 0;          // fraction 0..1 of the KV cache in use
  std::map<std::string, int> active_models;   // LoRA adapters with running requests
  std::map<std::string, int> waiting_models;  // LoRA adapters with waiting requests
  int64_t max_active_models = 0;              // LoRA slots per batch (max_lora); 0 = unknown
  int64_t cache_block_size = 0;               // tokens per KV block; 0 = unknown
  int64_t cache_num_gpu_blocks = 0;           // KV blocks; 0 = unknown
  std::chrono::system_clock::time_point update_time{};  // when these values were read

  bool operator==(const Metrics&) const = default;
};

}  // namespace epp::datastore

#endif  // EPP_DATASTORE_METRICS_H_
