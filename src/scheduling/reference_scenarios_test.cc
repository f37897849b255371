// The reference EPP's integration scenarios (GIE test/integration/epp, scheduling.md §5.2): the
// same config (queue, KV-cache, prefix and LoRA-affinity scorers, weight 1 each), the same pod
// metrics, the same expected pick. Also the built-in default profile, the cycle hooks, and a
// pool-level check that the default profile keeps a shared prefix on one endpoint.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "scheduling/plugins/inflight_load_producer.h"
#include "testing/endpoints.h"
#include "testing/scheduler_from_yaml.h"

namespace epp::scheduling {
namespace {

using testing::TestEndpoints;

constexpr char kReferenceConfig[] = R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: lora-affinity-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
  - pluginRef: prefix-cache-scorer
  - pluginRef: lora-affinity-scorer
)";

struct Pod {
  int64_t queue;
  double kv;
  std::vector<std::string> active;
};

struct Scenario {
  const char* name;
  std::vector<Pod> pods;
  const char* target_model;
  int want;  // index of the expected pod (192.168.1.<want+1> in the reference)
};

class ReferenceScenariosTest : public ::testing::TestWithParam<Scenario> {};

TEST_P(ReferenceScenariosTest, PicksWhatTheReferencePicks) {
  const Scenario& sc = GetParam();
  auto built = testing::SchedulerFromYaml(kReferenceConfig);
  ASSERT_TRUE(built.ok()) << built.status();
  TestEndpoints eps;
  // The reference's test pods report no LoRA slot count (max_lora 0).
  for (const Pod& p : sc.pods) eps.Add(TestEndpoints::M(p.queue, p.kv, p.active, {}, 0));
  std::string body = R"({"model":"x","prompt":"test"})";
  request::ParsedRequest parsed;
  parsed.prompt = {20, 6};
  Request req;
  req.target_model = sc.target_model;
  req.body = body;
  req.parsed = &parsed;
  // Deterministic: run many times, the pick never changes (no ties in these scenarios).
  for (int i = 0; i < 20; ++i) {
    req.id = static_cast<uint64_t>(i + 1);
    auto r = built->scheduler->Schedule(req, eps.all());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->Primary().target_endpoints.front(), eps[static_cast<size_t>(sc.want)]) << sc.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Reference, ReferenceScenariosTest,
    ::testing::Values(Scenario{"select lower queue and kv cache",
                               {{3, 0.2, {}}, {0, 0.1, {}}, {10, 0.2, {}}},
                               "my-model-12345",
                               1},
                      Scenario{"select active lora, low queue",
                               {{0, 0.2, {"foo", "bar"}},
                                {0, 0.1, {"foo", "sql-lora-1fdg2"}},
                                {10, 0.2, {"foo", "bar"}}},
                               "sql-lora-1fdg2",
                               1},
                      Scenario{"select lora despite higher kv cache",
                               {{10, 0.2, {}}, {10, 0.4, {"sql-lora-1fdg2"}}, {10, 0.3, {}}},
                               "sql-lora-1fdg2",
                               1},
                      Scenario{"do not shed requests by default",
                               {{6, 0.2, {"sql-lora-1fdg2"}}, {0, 0.85, {}}, {10, 0.9, {}}},
                               "sql-lora-1fdg2",
                               0},
                      Scenario{"split body across chunks",
                               {{4, 0.2, {"sql-lora-1fdg2"}}, {4, 0.85, {"sql-lora-1fdg2"}}},
                               "sql-lora-1fdg2",
                               0}),
    [](const ::testing::TestParamInfo<Scenario>& info) {
      std::string n = info.param.name;
      for (char& c : n) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return n;
    });

TEST(DefaultProfileTest, ConfigWithoutSchedulingPluginsGetsQueue2Kv2Prefix3) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins: []
)");
  ASSERT_TRUE(built.ok()) << built.status();
  const auto& profiles = built->scheduler->profiles();
  ASSERT_EQ(profiles.size(), 1u);
  const SchedulerProfile& p = *profiles.at("default");
  std::map<std::string, double> weights;
  for (const auto& ws : p.scorers()) weights[std::string(ws.scorer->Type())] = ws.weight;
  EXPECT_EQ(weights, (std::map<std::string, double>{{"queue-scorer", 2.0},
                                                    {"kv-cache-utilization-scorer", 2.0},
                                                    {"prefix-cache-scorer", 3.0}}));
  EXPECT_EQ(p.picker()->Type(), "max-score-picker");
  EXPECT_EQ(built->scheduler->hooks().producers.size(), 1u);  // approx-prefix-cache-producer
}

TEST(DefaultProfileTest, SharedPrefixStaysOnOneEndpointWhileLoadIsEven) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins: []
)");
  ASSERT_TRUE(built.ok()) << built.status();
  TestEndpoints eps;
  for (int i = 0; i < 8; ++i) eps.Add(TestEndpoints::M(0, 0.1));
  std::set<EndpointRef> per_group[4];
  for (int i = 0; i < 40; ++i) {
    int group = i % 4;
    std::string prompt =
        std::string(512, static_cast<char>('a' + group)) + " question " + std::to_string(i);
    std::string body = "{\"prompt\":\"" + prompt + "\"}";
    request::ParsedRequest parsed;
    parsed.prompt = {10, prompt.size() + 2};
    Request req;
    req.id = static_cast<uint64_t>(i + 1);
    req.target_model = "m";
    req.body = body;
    req.parsed = &parsed;
    auto r = built->scheduler->Schedule(req, eps.all());
    ASSERT_TRUE(r.ok());
    per_group[group].insert(r->Primary().target_endpoints.front());
  }
  for (const auto& g : per_group) EXPECT_EQ(g.size(), 1u);
}

TEST(CycleHooksTest, CompletionReachesTheHooksOfTheCycle) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: token-load-scorer
)");
  ASSERT_TRUE(built.ok()) << built.status();
  auto* inflight = built->plugins->FindAs<InflightLoadProducer>("inflight-load-producer");
  ASSERT_NE(inflight, nullptr);  // created because token-load-scorer requires it
  ASSERT_EQ(built->scheduler->hooks().completion.size(), 1u);
  TestEndpoints eps;
  eps.Add();
  std::string body = R"({"prompt":"0123456789abcdef"})";
  request::ParsedRequest parsed;
  parsed.prompt = {10, 18};
  Request req;
  req.id = 42;
  req.body = body;
  req.parsed = &parsed;
  ASSERT_TRUE(built->scheduler->Schedule(req, eps.all()).ok());
  EXPECT_EQ(inflight->LoadOf(eps[0]->Key()).requests, 1);
  built->scheduler->Complete(42, eps[0]->Key());
  EXPECT_EQ(inflight->LoadOf(eps[0]->Key()).requests, 0);
}

}  // namespace
}  // namespace epp::scheduling
