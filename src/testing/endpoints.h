// Test helper: endpoints with given metrics, owned by the fixture, for scheduling tests.
#ifndef EPP_TESTING_ENDPOINTS_H_
#define EPP_TESTING_ENDPOINTS_H_

#include <memory>
#include <string>
#include <vector>

#include "datastore/endpoint.h"

namespace epp::testing {

class TestEndpoints {
 public:
  // Adds endpoint "e<i>" at 10.0.0.<i+1>:8000 with these metrics (update_time = now).
  const datastore::Endpoint* Add(datastore::Metrics m = {}) {
    int i = static_cast<int>(storage_.size());
    auto e = std::make_unique<datastore::Endpoint>(datastore::MakeEndpoint(
        "e" + std::to_string(i), "ns", "10.0.0." + std::to_string(i + 1), 8000));
    if (m.update_time == std::chrono::system_clock::time_point{}) {
      m.update_time = std::chrono::system_clock::now();
    }
    e->metrics->Store(std::make_shared<const datastore::Metrics>(std::move(m)));
    storage_.push_back(std::move(e));
    refs_.push_back(storage_.back().get());
    return refs_.back();
  }
  // Metrics with a queue, KV usage and running LoRA adapters (max_lora given).
  static datastore::Metrics M(int64_t queue, double kv, std::vector<std::string> active = {},
                              std::vector<std::string> waiting = {}, int64_t max_lora = 4) {
    datastore::Metrics m;
    m.waiting_queue_size = queue;
    m.kv_cache_usage_percent = kv;
    for (auto& a : active) m.active_models[a] = 1;
    for (auto& w : waiting) m.waiting_models[w] = 1;
    m.max_active_models = max_lora;
    return m;
  }
  const std::vector<const datastore::Endpoint*>& all() const { return refs_; }
  const datastore::Endpoint* operator[](size_t i) const { return refs_[i]; }

 private:
  std::vector<std::unique_ptr<datastore::Endpoint>> storage_;
  std::vector<const datastore::Endpoint*> refs_;
};

}  // namespace epp::testing

#endif  // EPP_TESTING_ENDPOINTS_H_
