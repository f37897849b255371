#include "admin/debug_endpoints.h"

#include "gtest/gtest.h"

namespace epp::admin {
namespace {

TEST(DebugEndpointsJsonTest, EndpointsWithAndWithoutMetrics) {
  datastore::Snapshot snap;
  auto a = datastore::MakeEndpoint("a", "ns", "10.0.0.1", 8000,
                                   {{"inference.networking.k8s.io/engine-type", "vllm"}});
  datastore::Metrics m;
  m.waiting_queue_size = 3;
  m.running_requests_size = 5;
  m.kv_cache_usage_percent = 0.25;
  m.active_models = {{"sql-lora", 0}};
  m.max_active_models = 2;
  m.cache_block_size = 16;
  m.cache_num_gpu_blocks = 27089;
  auto now = std::chrono::system_clock::now();
  m.update_time = now - std::chrono::milliseconds(40);
  a.metrics->Store(std::make_shared<const datastore::Metrics>(m));
  snap.endpoints.push_back(std::make_shared<const datastore::Endpoint>(a));
  snap.endpoints.push_back(std::make_shared<const datastore::Endpoint>(
      datastore::MakeEndpoint("b\"q", "ns", "::1", 9000)));

  std::string json = DebugEndpointsJson(
      snap, [](const std::string& key) { return key == "ns/b\"q" ? "HTTP 500" : ""; }, now);
  EXPECT_EQ(json,
            R"([{"name":"a","namespace":"ns","address":"10.0.0.1","port":8000,)"
            R"("labels":{"inference.networking.k8s.io/engine-type":"vllm"},)"
            R"("metrics":{"waiting_queue_size":3,"running_requests_size":5,)"
            R"("kv_cache_usage_percent":0.25,"active_models":["sql-lora"],"waiting_models":[],)"
            R"("max_active_models":2,"cache_block_size":16,"cache_num_gpu_blocks":27089,)"
            R"("age_ms":40,"last_error":""}},)"
            R"({"name":"b\"q","namespace":"ns","address":"::1","port":9000,"labels":{},)"
            R"("metrics":{"waiting_queue_size":0,"running_requests_size":0,)"
            R"("kv_cache_usage_percent":0,"active_models":[],"waiting_models":[],)"
            R"("max_active_models":0,"cache_block_size":0,"cache_num_gpu_blocks":0,)"
            R"("age_ms":null,"last_error":"HTTP 500"}}])");
}

TEST(DebugEndpointsJsonTest, EmptyPool) {
  EXPECT_EQ(DebugEndpointsJson(
                datastore::Snapshot{}, [](const std::string&) { return ""; },
                std::chrono::system_clock::now()),
            "[]");
}

}  // namespace
}  // namespace epp::admin
