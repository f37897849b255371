// utilization-detector and concurrency-detector: saturation, filtering, parameters, and both
// built from config text.
#include "scheduling/plugins/saturation_detectors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "scheduling/plugins/cycle_data.h"
#include "testing/endpoints.h"
#include "testing/scheduler_from_yaml.h"

namespace epp::scheduling {
namespace {

using std::chrono::milliseconds;
using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::TestEndpoints;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::hours(500'000));

// Metrics with a queue and KV usage, read `age` before kNow.
datastore::Metrics At(int64_t queue, double kv, milliseconds age = milliseconds(0)) {
  datastore::Metrics m = TestEndpoints::M(queue, kv);
  m.update_time = kNow - age;
  return m;
}

// Adds an endpoint whose metrics were never scraped (update_time at the epoch).
EndpointRef AddUnscraped(TestEndpoints& eps) {
  EndpointRef e = eps.Add();
  e->metrics->Store(std::make_shared<const datastore::Metrics>());
  return e;
}

std::unique_ptr<UtilizationDetector> Utilization(UtilizationDetectorParams p = {}) {
  return std::make_unique<UtilizationDetector>("u", p, [] { return kNow; });
}

template <typename T>
std::unique_ptr<T> Make(const std::string& yaml) {
  auto p = T::Create("d", YAML::Load(yaml));
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return nullptr;
  return std::unique_ptr<T>(static_cast<T*>(p->release()));
}

TEST(UtilizationDetectorTest, SaturationTable) {
  struct Case {
    const char* name;
    std::vector<datastore::Metrics> metrics;  // one endpoint each
    int unscraped;                            // extra endpoints never scraped
    double want;
  } cases[] = {
      {"no candidates", {}, 0, 1.0},
      {"idle", {At(0, 0)}, 0, 0.0},
      {"queue at threshold", {At(5, 0)}, 0, 1.0},
      {"kv dominates", {At(2, 0.4)}, 0, 0.5},     // max(2/5, 0.4/0.8)
      {"queue dominates", {At(3, 0.4)}, 0, 0.6},  // max(3/5, 0.5)
      {"all equal", {At(1, 0.2), At(1, 0.2), At(1, 0.2)}, 0, 0.25},
      {"over 1 is not clamped", {At(10, 0)}, 0, 2.0},
      {"mean with a stale one",
       {At(2, 0.4), At(10, 0), At(0, 0, milliseconds(201))},
       0,
       (0.5 + 2.0 + 1.0) / 3},
      {"fresh at exactly the threshold", {At(0, 0, milliseconds(200))}, 0, 0.0},
      {"never scraped counts as saturated", {At(0, 0)}, 1, 0.5},
      {"only never scraped", {}, 2, 1.0},
  };
  auto d = Utilization();
  for (const auto& c : cases) {
    TestEndpoints eps;
    for (const auto& m : c.metrics) eps.Add(m);
    for (int i = 0; i < c.unscraped; ++i) AddUnscraped(eps);
    EXPECT_THAT(d->Saturation(eps.all(), nullptr), DoubleEq(c.want)) << c.name;
  }
}

TEST(UtilizationDetectorTest, FilterDropsStaleMissingAndOverloaded) {
  TestEndpoints eps;
  eps.Add(At(4, 0.79));                    // 0: keep
  eps.Add(At(5, 0));                       // 1: queue >= 5
  eps.Add(At(0, 0.8));                     // 2: kv >= 0.8
  eps.Add(At(0, 0, milliseconds(250)));    // 3: stale
  AddUnscraped(eps);                       // 4: missing
  eps.Add(At(0, 0.1, milliseconds(200)));  // 5: keep (age == threshold)
  CycleState state;
  auto d = Utilization();
  EXPECT_THAT(d->FilterEndpoints(state, Request{}, eps.all()), ElementsAre(eps[0], eps[5]));
}

TEST(UtilizationDetectorTest, FilterTable) {
  struct Case {
    const char* name;
    double headroom;
    std::vector<datastore::Metrics> metrics;
    std::vector<size_t> want;
  } cases[] = {
      {"no candidates", 0, {}, {}},
      {"all equal and fine", 0, {At(1, 0.1), At(1, 0.1)}, {0, 1}},
      {"all overloaded: returns all", 0, {At(9, 0), At(0, 0.95)}, {0, 1}},
      {"all stale: returns all",
       0,
       {At(0, 0, milliseconds(300)), At(0, 0, milliseconds(900))},
       {0, 1}},
      // headroom 0.5: queue limit 7.5, KV limit min(1, 1.2) = 1.
      {"headroom", 0.5, {At(7, 0.95), At(8, 0), At(0, 1.0), At(3, 0.5)}, {0, 3}},
      // headroom 0.1: queue limit 5.5, KV limit 0.88 (0.8 × 1.1 in floating point, a hair
      // above 0.88, as in the reference).
      {"small headroom", 0.1, {At(5, 0.879), At(6, 0), At(0, 0.881)}, {0}},
  };
  for (const auto& c : cases) {
    TestEndpoints eps;
    for (const auto& m : c.metrics) eps.Add(m);
    UtilizationDetectorParams p;
    p.headroom = c.headroom;
    auto d = Utilization(p);
    CycleState state;
    std::vector<EndpointRef> want;
    for (size_t i : c.want) want.push_back(eps[i]);
    EXPECT_THAT(d->FilterEndpoints(state, Request{}, eps.all()), ElementsAreArray(want)) << c.name;
  }
}

TEST(UtilizationDetectorTest, Parameters) {
  auto d = Make<UtilizationDetector>("{}");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->Type(), "utilization-detector");
  EXPECT_EQ(d->params().queue_depth_threshold, 5);
  EXPECT_EQ(d->params().kv_cache_util_threshold, 0.8);
  EXPECT_EQ(d->params().metrics_staleness_threshold, milliseconds(200));
  EXPECT_EQ(d->params().headroom, 0.0);

  auto custom = Make<UtilizationDetector>(
      "{queueDepthThreshold: 10, kvCacheUtilThreshold: 1, metricsStalenessThreshold: 1.5s, "
      "headroom: 0.2}");
  ASSERT_NE(custom, nullptr);
  EXPECT_EQ(custom->params().queue_depth_threshold, 10);
  EXPECT_EQ(custom->params().kv_cache_util_threshold, 1.0);
  EXPECT_EQ(custom->params().metrics_staleness_threshold, milliseconds(1500));
  EXPECT_EQ(custom->params().headroom, 0.2);

  struct Bad {
    const char* yaml;
    const char* field;
  } bad[] = {
      {"{queueDepthThreshold: 0}", "queueDepthThreshold"},
      {"{queueDepthThreshold: 2.5}", "queueDepthThreshold"},
      {"{kvCacheUtilThreshold: 0}", "kvCacheUtilThreshold"},
      {"{kvCacheUtilThreshold: 1.5}", "kvCacheUtilThreshold"},
      {"{metricsStalenessThreshold: 0s}", "metricsStalenessThreshold"},
      {"{metricsStalenessThreshold: 200}", "metricsStalenessThreshold"},
      {"{metricsStalenessThreshold: soon}", "metricsStalenessThreshold"},
      {"{headroom: -0.1}", "headroom"},
      {"{queueDepth: 5}", "queueDepth"},
  };
  for (const auto& b : bad) {
    auto got = UtilizationDetector::Create("d", YAML::Load(b.yaml));
    ASSERT_FALSE(got.ok()) << b.yaml;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << b.yaml;
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(b.field)) << b.yaml;
  }
}

CycleState StateWithLoad(const TestEndpoints& eps, std::vector<InflightLoad> loads) {
  CycleState state;
  auto info = std::make_unique<InflightLoadInfo>();
  for (size_t i = 0; i < loads.size(); ++i) {
    if (loads[i].requests != 0 || loads[i].tokens != 0) info->load[eps[i]] = loads[i];
  }
  state.Write(std::string(kInflightLoadKey), std::move(info));
  return state;
}

TEST(ConcurrencyDetectorTest, SaturationTable) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  eps.Add();
  struct Case {
    const char* name;
    const char* params;
    std::vector<InflightLoad> loads;  // per endpoint; {0,0} = absent
    size_t candidates;
    double want;
  } cases[] = {
      {"no candidates", "{}", {}, 0, 1.0},
      {"idle", "{}", {}, 3, 0.0},
      {"requests", "{}", {{50, 9}, {150, 9}, {0, 0}}, 3, 200.0 / 300},
      {"all equal", "{maxConcurrency: 10}", {{5, 0}, {5, 0}, {5, 0}}, 3, 0.5},
      {"tokens",
       "{concurrencyMode: tokens, maxTokenConcurrency: 1000}",
       {{1, 500}, {1, 1500}},
       2,
       1.0},
      {"headroom does not change saturation",
       "{maxConcurrency: 10, headroom: 1}",
       {{10, 0}},
       1,
       1.0},
  };
  for (const auto& c : cases) {
    auto d = Make<ConcurrencyDetector>(c.params);
    ASSERT_NE(d, nullptr) << c.name;
    CycleState state = StateWithLoad(eps, c.loads);
    std::span<const EndpointRef> cands(eps.all().data(), c.candidates);
    EXPECT_THAT(d->Saturation(cands, &state), DoubleEq(c.want)) << c.name;
  }
}

TEST(ConcurrencyDetectorTest, WithoutLoadDataEveryEndpointIsIdle) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  auto d = Make<ConcurrencyDetector>("{}");
  CycleState empty;
  EXPECT_EQ(d->Saturation(eps.all(), nullptr), 0.0);
  EXPECT_EQ(d->Saturation(eps.all(), &empty), 0.0);
  EXPECT_THAT(d->FilterEndpoints(empty, Request{}, eps.all()), ElementsAre(eps[0], eps[1]));
}

TEST(ConcurrencyDetectorTest, FilterTable) {
  TestEndpoints eps;
  for (int i = 0; i < 4; ++i) eps.Add();
  struct Case {
    const char* name;
    const char* params;
    std::vector<InflightLoad> loads;
    std::vector<size_t> want;
  } cases[] = {
      {"below, at and above the limit", "{}", {{99, 0}, {100, 0}, {0, 0}, {101, 0}}, {0, 2}},
      {"all at the limit: returns all",
       "{maxConcurrency: 2}",
       {{2, 0}, {2, 0}, {3, 0}, {9, 0}},
       {0, 1, 2, 3}},
      // limit 2 × 1.5 = 3
      {"headroom", "{maxConcurrency: 2, headroom: 0.5}", {{2, 0}, {3, 0}, {0, 0}, {4, 0}}, {0, 2}},
      {"tokens",
       "{concurrencyMode: tokens, maxTokenConcurrency: 100}",
       {{1, 99}, {1, 100}, {50, 0}, {0, 0}},
       {0, 2, 3}},
  };
  for (const auto& c : cases) {
    auto d = Make<ConcurrencyDetector>(c.params);
    ASSERT_NE(d, nullptr) << c.name;
    CycleState state = StateWithLoad(eps, c.loads);
    std::vector<EndpointRef> want;
    for (size_t i : c.want) want.push_back(eps[i]);
    EXPECT_THAT(d->FilterEndpoints(state, Request{}, eps.all()), ElementsAreArray(want)) << c.name;
  }
  auto d = Make<ConcurrencyDetector>("{}");
  CycleState state;
  EXPECT_TRUE(d->FilterEndpoints(state, Request{}, {}).empty());
}

TEST(ConcurrencyDetectorTest, Parameters) {
  auto d = Make<ConcurrencyDetector>("{}");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->Type(), "concurrency-detector");
  EXPECT_EQ(d->params().mode, ConcurrencyDetectorParams::Mode::kRequests);
  EXPECT_EQ(d->params().max_concurrency, 100);
  EXPECT_EQ(d->params().max_token_concurrency, 1'000'000);
  EXPECT_EQ(d->params().headroom, 0.0);
  ASSERT_EQ(d->RequiredProducers().size(), 1u);
  EXPECT_EQ(d->RequiredProducers()[0].type, "inflight-load-producer");
  EXPECT_NE(Make<ConcurrencyDetector>("{inFlightLoadProducerName: p}"), nullptr);

  struct Bad {
    const char* yaml;
    const char* field;
  } bad[] = {
      {"{concurrencyMode: bytes}", "concurrencyMode"},
      {"{maxConcurrency: 0}", "maxConcurrency"},
      {"{maxTokenConcurrency: -1}", "maxTokenConcurrency"},
      {"{headroom: -1}", "headroom"},
      {"{maxRequests: 3}", "maxRequests"},
  };
  for (const auto& b : bad) {
    auto got = ConcurrencyDetector::Create("d", YAML::Load(b.yaml));
    ASSERT_FALSE(got.ok()) << b.yaml;
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(b.field)) << b.yaml;
  }
}

TEST(SaturationDetectorsFromConfigTest, UtilizationDetectorFiltersTheDefaultProfile) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: utilization-detector
  parameters: {queueDepthThreshold: 8}
- type: kv-cache-utilization-scorer
)");
  ASSERT_TRUE(built.ok()) << built.status();
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(9, 0.0));  // best KV, but its queue is over the threshold
  eps.Add(TestEndpoints::M(1, 0.5));
  for (int i = 0; i < 5; ++i) {
    auto r = built->scheduler->Schedule(Request{}, eps.all());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->Primary().target_endpoints.front(), eps[1]);
  }
  auto* plugin = built->plugins->Find("utilization-detector");
  ASSERT_NE(plugin, nullptr);
  auto* detector = dynamic_cast<SaturationDetector*>(plugin);
  ASSERT_NE(detector, nullptr);
  // max(9/8, 0) and max(1/8, 0.5/0.8) = 0.625.
  EXPECT_THAT(detector->Saturation(eps.all(), nullptr), DoubleEq((9.0 / 8 + 0.625) / 2));
}

TEST(SaturationDetectorsFromConfigTest, ConcurrencyDetectorSpreadsByInflightRequests) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: concurrency-detector
  parameters: {maxConcurrency: 1}
- type: queue-scorer
)");
  ASSERT_TRUE(built.ok()) << built.status();
  ASSERT_EQ(built->scheduler->hooks().producers.size(), 1u);  // inflight-load-producer created
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  Request r1, r2;
  r1.id = 1;
  r2.id = 2;
  auto first = built->scheduler->Schedule(r1, eps.all());
  ASSERT_TRUE(first.ok());
  auto second = built->scheduler->Schedule(r2, eps.all());
  ASSERT_TRUE(second.ok());
  EndpointRef a = first->Primary().target_endpoints.front();
  EndpointRef b = second->Primary().target_endpoints.front();
  EXPECT_NE(a, b);  // the first endpoint is at its limit of one request
  // When request 1 is over, its endpoint is the only one below the limit.
  built->scheduler->Complete(1, a->Key());
  Request r3;
  r3.id = 3;
  auto third = built->scheduler->Schedule(r3, eps.all());
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->Primary().target_endpoints.front(), a);
}

}  // namespace
}  // namespace epp::scheduling
