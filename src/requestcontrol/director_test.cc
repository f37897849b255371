#include "requestcontrol/director.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduling/plugins/pickers.h"
#include "scheduling/plugins/single_profile_handler.h"
#include "testing/scheduler_from_yaml.h"

namespace epp::requestcontrol {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr char kChatPath[] = "/v1/chat/completions";
constexpr char kChatBody[] =
    R"({"model":"llama","messages":[{"role":"user","content":"hello"}],"stream":true})";

// A scheduler built the way epp builds it: YAML → config → plugins → BuildScheduler.
class SchedulerHolder {
 public:
  explicit SchedulerHolder(int max_endpoints = 1) {
    std::string yaml =
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\n"
        "kind: EndpointPickerConfig\n"
        "plugins:\n"
        "- type: random-picker\n"
        "  parameters:\n"
        "    maxNumOfEndpoints: " +
        std::to_string(max_endpoints) + "\n";
    auto built = ::epp::testing::SchedulerFromYaml(yaml);
    EXPECT_TRUE(built.ok()) << built.status();
    plugins_ = std::move(built->plugins);
    scheduler_ = std::move(built->scheduler);
  }
  const scheduling::Scheduler& get() const { return *scheduler_; }

 private:
  std::unique_ptr<config::PluginSet> plugins_;
  std::unique_ptr<scheduling::Scheduler> scheduler_;
};

class DirectorTest : public ::testing::Test {
 protected:
  void AddPool() {
    ds_.SetPoolReady(true);
    ds_.ReplaceAll({
        datastore::MakeEndpoint("a", "ns", "10.0.0.1", 8000),
        datastore::MakeEndpoint("b1", "ns", "10.0.0.2", 8000),
        datastore::MakeEndpoint("b2", "ns", "10.0.0.2", 8001),
        datastore::MakeEndpoint("c", "ns", "fd00::3", 9000),
    });
  }

  RequestInput Input() {
    RequestInput in;
    in.request_id = "req-1";
    in.path = kChatPath;
    in.headers = &headers_;
    return in;
  }

  absl::StatusOr<Decision> Handle(const Director& d, const RequestInput& in,
                                  const std::string& body) {
    return d.HandleRequest(in, body, body.size());
  }

  datastore::Datastore ds_;
  SchedulerHolder scheduler_;
  std::map<std::string, std::string, std::less<>> headers_;
};

const std::set<std::string> kAllDestinations = {"10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.2:8001",
                                                "[fd00::3]:9000"};

TEST_F(DirectorTest, ReturnsADestinationAmongTheEndpoints) {
  AddPool();
  Director director(ds_, scheduler_.get());
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto d = Handle(director, Input(), kChatBody);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(kAllDestinations.count(d->destination), 1u) << d->destination;
    ASSERT_EQ(d->endpoints.size(), 1u);
    EXPECT_EQ(d->endpoints[0]->host_port, d->destination);
    EXPECT_NE(d->snapshot, nullptr);
    EXPECT_EQ(d->incoming_model, "llama");
    EXPECT_EQ(d->target_model, "llama");
    EXPECT_FALSE(d->rewritten_body.has_value());
    EXPECT_TRUE(d->stream);
    seen.insert(d->destination);
  }
  // The IPv6 endpoint is formatted with brackets.
  EXPECT_EQ(seen.count("[fd00::3]:9000"), 1u);
  EXPECT_EQ(seen, kAllDestinations);
}

TEST_F(DirectorTest, DecisionKeepsEndpointsAliveAfterPoolChange) {
  AddPool();
  Director director(ds_, scheduler_.get());
  auto d = Handle(director, Input(), kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  std::string dest = d->destination;
  ds_.ReplaceAll({});
  EXPECT_EQ(d->endpoints[0]->host_port, dest);
}

TEST_F(DirectorTest, BadBodyIsInvalidArgument) {
  AddPool();
  Director director(ds_, scheduler_.get());
  for (const char* body : {"{not json", "[1,2]", R"({"messages":[]})", ""}) {
    auto d = Handle(director, Input(), body);
    ASSERT_FALSE(d.ok()) << body;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

TEST_F(DirectorTest, EmptyPoolIsUnavailable) {
  Director director(ds_, scheduler_.get());
  auto d = Handle(director, Input(), kChatBody);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(DirectorTest, SubsetHintMatchesByIpOnly) {
  AddPool();
  Director director(ds_, scheduler_.get());
  RequestInput in = Input();
  in.subset = std::vector<std::string>{"10.0.0.2:1"};
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto d = Handle(director, in, kChatBody);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_THAT(d->destination, AnyOf("10.0.0.2:8000", "10.0.0.2:8001"));
    seen.insert(d->destination);
  }
  EXPECT_EQ(seen, (std::set<std::string>{"10.0.0.2:8000", "10.0.0.2:8001"}));
}

TEST_F(DirectorTest, SubsetHintWithIpv6AndBareIp) {
  AddPool();
  Director director(ds_, scheduler_.get());
  RequestInput in = Input();
  in.subset = std::vector<std::string>{"[fd00::3]:1234"};
  auto d = Handle(director, in, kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->destination, "[fd00::3]:9000");

  in.subset = std::vector<std::string>{"10.0.0.1"};
  d = Handle(director, in, kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->destination, "10.0.0.1:8000");
}

TEST_F(DirectorTest, EmptySubsetIsUnavailable) {
  AddPool();
  Director director(ds_, scheduler_.get());
  RequestInput in = Input();
  in.subset = std::vector<std::string>{};
  auto d = Handle(director, in, kChatBody);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(DirectorTest, NonMatchingSubsetIsUnavailable) {
  AddPool();
  Director director(ds_, scheduler_.get());
  RequestInput in = Input();
  in.subset = std::vector<std::string>{"10.9.9.9:8000", "10.9.9.8:8000"};
  auto d = Handle(director, in, kChatBody);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(d.status().message(), HasSubstr("10.9.9.9:8000"));
}

TEST_F(DirectorTest, DisableSubsetFilterIgnoresHint) {
  AddPool();
  Director director(ds_, scheduler_.get(), /*disable_subset_filter=*/true);
  RequestInput in = Input();
  in.subset = std::vector<std::string>{"10.9.9.9:8000"};
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto d = Handle(director, in, kChatBody);
    ASSERT_TRUE(d.ok()) << d.status();
    seen.insert(d->destination);
  }
  EXPECT_EQ(seen, kAllDestinations);

  in.subset = std::vector<std::string>{};
  EXPECT_TRUE(Handle(director, in, kChatBody).ok());
}

TEST_F(DirectorTest, ModelRewriteProducesRewrittenBody) {
  AddPool();
  Director director(ds_, scheduler_.get());
  RequestInput in = Input();
  in.model_rewrite = "llama-v2";
  std::string body = kChatBody;
  auto d = Handle(director, in, body);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->incoming_model, "llama");
  EXPECT_EQ(d->target_model, "llama-v2");
  ASSERT_TRUE(d->rewritten_body.has_value());
  EXPECT_EQ(*d->rewritten_body,
            R"({"model":"llama-v2","messages":[{"role":"user","content":"hello"}],"stream":true})");
  EXPECT_EQ(body, kChatBody);  // the input is untouched
}

TEST_F(DirectorTest, ModelRewriteEqualToModelLeavesBodyAlone) {
  AddPool();
  Director director(ds_, scheduler_.get());
  RequestInput in = Input();
  in.model_rewrite = "llama";
  auto d = Handle(director, in, kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "llama");
  EXPECT_FALSE(d->rewritten_body.has_value());
}

TEST_F(DirectorTest, HeaderOnlyEmptyPoolIsInternal) {
  Director director(ds_, scheduler_.get());
  auto d = director.HandleHeaderOnly(Input());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(d.status().message(), "no pods available in datastore");
}

TEST_F(DirectorTest, HeaderOnlyReturnsADestination) {
  AddPool();
  Director director(ds_, scheduler_.get());
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto d = director.HandleHeaderOnly(Input());
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_EQ(d->endpoints.size(), 1u);
    EXPECT_EQ(d->endpoints[0]->host_port, d->destination);
    seen.insert(d->destination);
  }
  EXPECT_EQ(seen, kAllDestinations);
}

TEST_F(DirectorTest, HeaderOnlyHonoursSubset) {
  AddPool();
  Director director(ds_, scheduler_.get());
  RequestInput in = Input();
  in.subset = std::vector<std::string>{"10.0.0.1:8000"};
  auto d = director.HandleHeaderOnly(in);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->destination, "10.0.0.1:8000");

  in.subset = std::vector<std::string>{"10.9.9.9:1"};
  d = director.HandleHeaderOnly(in);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(DirectorTest, MaxNumOfEndpointsTwoGivesTwoDestinations) {
  AddPool();
  SchedulerHolder two(/*max_endpoints=*/2);
  Director director(ds_, two.get());
  for (int i = 0; i < 50; ++i) {
    auto d = Handle(director, Input(), kChatBody);
    ASSERT_TRUE(d.ok()) << d.status();
    std::vector<std::string> parts = absl::StrSplit(d->destination, ',');
    ASSERT_EQ(parts.size(), 2u) << d->destination;
    EXPECT_NE(parts[0], parts[1]);
    for (const auto& p : parts) EXPECT_EQ(kAllDestinations.count(p), 1u) << p;
    ASSERT_EQ(d->endpoints.size(), 2u);
    EXPECT_EQ(d->endpoints[0]->host_port, parts[0]);
    EXPECT_EQ(d->endpoints[1]->host_port, parts[1]);
  }
}

TEST_F(DirectorTest, CompletionsPathUsesPrompt) {
  AddPool();
  Director director(ds_, scheduler_.get());
  RequestInput in = Input();
  in.path = "/v1/completions";
  EXPECT_TRUE(Handle(director, in, R"({"model":"m","prompt":"hi"})").ok());
  auto bad = Handle(director, in, R"({"model":"m","messages":[{"role":"user"}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

// --- InferenceModelRewrite rules ------------------------------------------------------------

datastore::ModelRewrite Rewrite(std::string name, std::vector<std::string> matches,
                                std::vector<datastore::ModelRewriteTarget> targets) {
  return datastore::ModelRewrite{
      std::move(name), {datastore::ModelRewriteRule{std::move(matches), std::move(targets)}}};
}

class DirectorRewriteTest : public DirectorTest {
 protected:
  void SetUp() override { AddPool(); }
  void SetRules(std::vector<datastore::ModelRewrite> rules) {
    ASSERT_TRUE(rewrites_.ReplaceModelRewrites(std::move(rules)).ok());
  }
  datastore::ModelRewriteStore rewrites_;
};

TEST_F(DirectorRewriteTest, RuleRewritesTheIncomingModel) {
  SetRules({Rewrite("alias-rule", {"alias"}, {{"llama", 0}})});
  Director director(ds_, scheduler_.get(), false, &rewrites_);
  const std::string body =
      R"({"model":"alias","messages":[{"role":"user","content":"hello"}],"stream":true})";
  auto d = Handle(director, Input(), body);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->incoming_model, "alias");
  EXPECT_EQ(d->target_model, "llama");
  EXPECT_EQ(d->model_rewrite_name, "alias-rule");
  ASSERT_TRUE(d->rewritten_body.has_value());
  EXPECT_EQ(*d->rewritten_body, kChatBody);

  // A model no rule names is left alone.
  d = Handle(director, Input(), kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "llama");
  EXPECT_EQ(d->model_rewrite_name, "");
  EXPECT_FALSE(d->rewritten_body.has_value());
}

TEST_F(DirectorRewriteTest, CatchAllRuleAndExactPrecedence) {
  SetRules({Rewrite("all", {}, {{"fallback", 0}}), Rewrite("exact", {"llama"}, {{"v2", 0}})});
  Director director(ds_, scheduler_.get(), false, &rewrites_);
  auto d = Handle(director, Input(), kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "v2") << "an exact match beats an earlier catch-all";
  EXPECT_EQ(d->model_rewrite_name, "exact");
  d = Handle(director, Input(), R"({"model":"other","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "fallback");
  EXPECT_EQ(*d->rewritten_body,
            R"({"model":"fallback","messages":[{"role":"user","content":"x"}]})");
}

// The reference's order: the header sets the target first, then a rule for the incoming model
// overrides it; the header applies when no rule does.
TEST_F(DirectorRewriteTest, RuleWinsOverTheHeaderWhichAppliesOtherwise) {
  SetRules({Rewrite("r", {"llama"}, {{"from-rule", 0}})});
  Director director(ds_, scheduler_.get(), false, &rewrites_);
  RequestInput in = Input();
  in.model_rewrite = "from-header";
  auto d = Handle(director, in, kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "from-rule");
  EXPECT_EQ(d->model_rewrite_name, "r");

  d = Handle(director, in, R"({"model":"other","messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "from-header");
  EXPECT_EQ(d->model_rewrite_name, "");
  EXPECT_EQ(*d->rewritten_body,
            R"({"model":"from-header","messages":[{"role":"user","content":"x"}]})");
}

TEST_F(DirectorRewriteTest, RuleTargetEqualToTheIncomingModelLeavesTheBodyAlone) {
  SetRules({Rewrite("keep", {"llama"}, {{"llama", 0}})});
  Director director(ds_, scheduler_.get(), false, &rewrites_);
  RequestInput in = Input();
  in.model_rewrite = "from-header";  // overridden by the rule, which keeps the name
  auto d = Handle(director, in, kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "llama");
  EXPECT_FALSE(d->rewritten_body.has_value());
}

// 4,000 requests split 90/10 land within 5 points of it (over 10 standard deviations).
TEST_F(DirectorRewriteTest, WeightedSplit) {
  SetRules({Rewrite("canary", {"llama"}, {{"v1", 90}, {"v2", 10}})});
  Director director(ds_, scheduler_.get(), false, &rewrites_);
  std::map<std::string, int> seen;
  constexpr int kN = 4000;
  for (int i = 0; i < kN; ++i) {
    auto d = Handle(director, Input(), kChatBody);
    ASSERT_TRUE(d.ok()) << d.status();
    ++seen[d->target_model];
    EXPECT_THAT(*d->rewritten_body, HasSubstr("\"model\":\"" + d->target_model + "\""));
  }
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_NEAR(seen["v1"] / static_cast<double>(kN), 0.9, 0.05);
  EXPECT_NEAR(seen["v2"] / static_cast<double>(kN), 0.1, 0.05);
}

TEST_F(DirectorRewriteTest, NewRulesApplyToTheNextRequest) {
  Director director(ds_, scheduler_.get(), false, &rewrites_);
  auto d = Handle(director, Input(), kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "llama");
  SetRules({Rewrite("r", {"llama"}, {{"llama-v2", 0}})});
  d = Handle(director, Input(), kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "llama-v2");
  SetRules({});
  d = Handle(director, Input(), kChatBody);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->target_model, "llama");
}

// A detector whose answer the test sets.
class FixedDetector : public scheduling::SaturationDetector {
 public:
  double Saturation(std::span<const scheduling::EndpointRef> candidates,
                    const scheduling::CycleState*) const override {
    seen = candidates.size();
    return value;
  }
  double value = 0;
  mutable size_t seen = 0;
};

TEST_F(DirectorTest, ShedsNegativePriorityRequestsOnlyWhileSaturated) {
  AddPool();
  datastore::ObjectiveStore objectives;
  objectives.Replace({{"batch", -1}, {"chat", 5}});
  FixedDetector detector;
  Director d(ds_, scheduler_.get(), false, nullptr, Admission{&objectives, &detector});
  RequestInput in = Input();

  detector.value = 1.0;  // saturated
  in.objective = "batch";
  auto shed = Handle(d, in, kChatBody);
  ASSERT_FALSE(shed.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(shed.status())) << shed.status();
  EXPECT_THAT(shed.status().message(), HasSubstr("sheddable request dropped"));
  EXPECT_EQ(detector.seen, 4u);  // the candidates were judged
  // Priority >= 0, no objective, or an unknown one: never shed.
  for (std::string_view objective : {"chat", "", "unknown"}) {
    in.objective = objective;
    EXPECT_TRUE(Handle(d, in, kChatBody).ok()) << objective;
  }
  detector.value = 0.99;  // below saturation: the sheddable request goes through
  in.objective = "batch";
  EXPECT_TRUE(Handle(d, in, kChatBody).ok());
  // Without an objective store there is no shedding at all.
  detector.value = 5;
  Director no_admission(ds_, scheduler_.get());
  EXPECT_TRUE(Handle(no_admission, in, kChatBody).ok());
}

}  // namespace
}  // namespace epp::requestcontrol
