#include "datalayer/plugins.h"

#include "gtest/gtest.h"

namespace epp::datalayer {
namespace {

TEST(MetricsDataSourceTest, DefaultsAndParameters) {
  auto p = MetricsDataSource::Create("src", YAML::Node());
  ASSERT_TRUE(p.ok()) << p.status();
  auto* s = dynamic_cast<MetricsDataSource*>(p->get());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->scheme(), "http");
  EXPECT_EQ(s->path(), "/metrics");
  EXPECT_TRUE(s->insecure_skip_verify());
  auto q =
      MetricsDataSource::Create("src", YAML::Load("{path: /stats, insecureSkipVerify: false}"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(dynamic_cast<MetricsDataSource*>(q->get())->path(), "/stats");
}

TEST(MetricsDataSourceTest, Https) {
  auto p =
      MetricsDataSource::Create("src", YAML::Load("{scheme: https, insecureSkipVerify: false}"));
  ASSERT_TRUE(p.ok()) << p.status();
  auto* s = dynamic_cast<MetricsDataSource*>(p->get());
  EXPECT_EQ(s->scheme(), "https");
  EXPECT_FALSE(s->insecure_skip_verify());
}

TEST(MetricsDataSourceTest, Errors) {
  struct Case {
    const char* yaml;
    absl::StatusCode code;
    const char* part;
  } cases[] = {
      {"{scheme: ftp}", absl::StatusCode::kInvalidArgument, "scheme"},
      {"{path: metrics}", absl::StatusCode::kInvalidArgument, "path"},
      {"{port: 1}", absl::StatusCode::kInvalidArgument, "port"},
  };
  for (const auto& c : cases) {
    auto p = MetricsDataSource::Create("src", YAML::Load(c.yaml));
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), c.code) << c.yaml;
    EXPECT_NE(p.status().message().find(c.part), std::string::npos) << p.status();
  }
}

TEST(CoreMetricsExtractorTest, DefaultEngine) {
  auto p = CoreMetricsExtractor::Create("x", YAML::Node());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(dynamic_cast<CoreMetricsExtractor*>(p->get())->default_engine(), "vllm");
  auto q = CoreMetricsExtractor::Create("x", YAML::Load("{defaultEngine: sglang}"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(dynamic_cast<CoreMetricsExtractor*>(q->get())->default_engine(), "sglang");
  auto bad = CoreMetricsExtractor::Create("x", YAML::Load("{defaultEngine: tgi}"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tgi"), std::string::npos);
  EXPECT_TRUE(CoreMetricsExtractor::Create("x", YAML::Load("{engineConfigs: []}")).ok());
  auto typo = CoreMetricsExtractor::Create("x", YAML::Load("{engineConfig: []}"));
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("engineConfig"), std::string::npos);
}

TEST(CoreMetricsExtractorTest, EngineConfigsAddAndReplaceEngines) {
  auto p = CoreMetricsExtractor::Create("x", YAML::Load(R"(
defaultEngine: my-engine
engineLabelKey: llm-d.ai/engine-type
engineConfigs:
- name: my-engine
  queuedRequestsSpec: "custom_queue_size{status=waiting}"
  runningRequestsSpec: custom_running_size
  kvUsageSpec: custom_cache_utilization
- name: vllm
  queuedRequestsSpec: vllm:num_requests_waiting
  runningRequestsSpec: vllm:num_requests_running
  kvUsageSpec: ""
)"));
  ASSERT_TRUE(p.ok()) << p.status();
  auto* x = dynamic_cast<CoreMetricsExtractor*>(p->get());
  EXPECT_EQ(x->default_engine(), "my-engine");
  EXPECT_EQ(x->engine_label_key(), "llm-d.ai/engine-type");
  const EngineConfig* mine = FindEngine(x->engines(), "my-engine");
  ASSERT_NE(mine, nullptr);
  auto page = std::string(
      "custom_queue_size{status=\"waiting\"} 7\ncustom_queue_size{status=\"other\"} 1\n"
      "custom_running_size 3\ncustom_cache_utilization 0.25\n");
  auto r = ExtractMetrics(*mine, page);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->metrics.waiting_queue_size, 7);
  EXPECT_EQ(r->metrics.running_requests_size, 3);
  EXPECT_DOUBLE_EQ(r->metrics.kv_cache_usage_percent, 0.25);
  // The user's vllm replaces the built-in wholesale: no KV spec, no LoRA or cache info.
  const EngineConfig* vllm = FindEngine(x->engines(), "vllm");
  ASSERT_NE(vllm, nullptr);
  EXPECT_TRUE(vllm->kv_usage.empty());
  EXPECT_TRUE(vllm->cache_info.name.empty());
  // Built-ins not replaced are still there.
  EXPECT_NE(FindEngine(x->engines(), "sglang"), nullptr);
  EXPECT_NE(FindEngine(x->engines(), "triton-tensorrt-llm"), nullptr);
}

TEST(CoreMetricsExtractorTest, EngineConfigsErrorsNameTheField) {
  struct Case {
    const char* yaml;
    const char* part;
  } cases[] = {
      {"{engineConfigs: {name: x}}", "engineConfigs\" must be a list"},
      {"{engineConfigs: [{queuedRequestsSpec: q}]}", "engineConfigs[0].name: required"},
      {"{engineConfigs: [{name: x, queueSpec: q}]}", "engineConfigs[0].queueSpec: unknown field"},
      {"{engineConfigs: [{name: x, kvUsageSpec: \"bad{\"}]}", "engineConfigs[0].kvUsageSpec"},
      {"{engineConfigs: [{name: x}, {name: x}]}",
       "engineConfigs[1].name: \"x\" is configured twice"},
      {"{engineConfigs: [{name: x, loraSpec: [a]}]}",
       "engineConfigs[0].loraSpec: must be a string"},
      {"{defaultEngine: nope, engineConfigs: [{name: x}]}", "unknown engine \"nope\""},
      {"{engineLabelKey: \"\"}", "engineLabelKey"},
  };
  for (const auto& c : cases) {
    auto p = CoreMetricsExtractor::Create("x", YAML::Load(c.yaml));
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_NE(p.status().message().find(c.part), std::string::npos)
        << c.yaml << " -> " << p.status();
  }
}

}  // namespace
}  // namespace epp::datalayer
