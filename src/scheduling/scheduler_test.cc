#include "scheduling/scheduler.h"

#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduling/plugins/pickers.h"
#include "scheduling/plugins/single_profile_handler.h"

namespace epp::scheduling {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Keeps the candidates whose name is not `drop` ("*" drops all); logs each call.
class FakeFilter : public Filter {
 public:
  FakeFilter(std::string name, std::string drop, std::vector<std::string>* log = nullptr)
      : Filter(std::move(name)), drop_(std::move(drop)), log_(log) {}
  std::string_view Type() const override { return "fake-filter"; }
  std::vector<EndpointRef> FilterEndpoints(CycleState&, const Request&,
                                           std::span<const EndpointRef> candidates) override {
    if (log_ != nullptr) log_->push_back(Name());
    received.assign(candidates.begin(), candidates.end());
    std::vector<EndpointRef> out;
    for (EndpointRef e : candidates) {
      if (drop_ != "*" && e->name != drop_) out.push_back(e);
    }
    return out;
  }
  std::vector<EndpointRef> received;

 private:
  std::string drop_;
  std::vector<std::string>* log_;
};

// Scores by endpoint name from a table (0 when absent).
class FakeScorer : public Scorer {
 public:
  FakeScorer(std::string name, std::map<std::string, double> table = {})
      : Scorer(std::move(name)), table_(std::move(table)) {}
  std::string_view Type() const override { return "fake-scorer"; }
  void Score(CycleState&, const Request&, std::span<const EndpointRef> candidates,
             std::span<double> scores) override {
    for (size_t i = 0; i < candidates.size(); ++i) {
      auto it = table_.find(candidates[i]->name);
      scores[i] = it == table_.end() ? 0 : it->second;
    }
  }

 private:
  std::map<std::string, double> table_;
};

// Records what it was given and returns the candidates in the given order.
class FakePicker : public Picker {
 public:
  using Picker::Picker;
  std::string_view Type() const override { return "fake-picker"; }
  std::vector<EndpointRef> Pick(CycleState&, std::vector<ScoredEndpoint> scored) override {
    received = scored;
    std::vector<EndpointRef> out;
    for (const auto& s : scored) out.push_back(s.endpoint);
    return out;
  }
  std::vector<ScoredEndpoint> received;
};

// Runs every profile once; the primary is the alphabetically first that succeeded.
class FakeHandler : public ProfileHandler {
 public:
  using ProfileHandler::ProfileHandler;
  std::string_view Type() const override { return "fake-handler"; }
  std::vector<const SchedulerProfile*> PickProfiles(
      CycleState&, const Request&,
      const std::map<std::string, std::unique_ptr<SchedulerProfile>>& profiles,
      const std::map<std::string, ProfileResult>& results,
      const std::vector<std::string>& failed) override {
    if (!results.empty() || !failed.empty()) return {};
    std::vector<const SchedulerProfile*> out;
    for (const auto& [name, p] : profiles) out.push_back(p.get());
    return out;
  }
  absl::StatusOr<SchedulingResult> ProcessResults(
      CycleState&, const Request&, std::map<std::string, ProfileResult> results) override {
    SchedulingResult r;
    r.primary_profile = results.begin()->first;
    r.profile_results = std::move(results);
    return r;
  }
};

// A plugin with no scheduling role.
class OtherPlugin : public Plugin {
 public:
  using Plugin::Plugin;
  std::string_view Type() const override { return "fake-other"; }
};

PluginRegistry TestRegistry() {
  PluginRegistry r;
  r.Register(std::string(kMaxScorePickerType), MaxScorePicker::Create);
  r.Register(std::string(kRandomPickerType), RandomPicker::Create);
  r.Register(std::string(kSingleProfileHandlerType), SingleProfileHandler::Create);
  r.Register("fake-filter",
             [](const std::string& name,
                const YAML::Node& params) -> absl::StatusOr<std::unique_ptr<Plugin>> {
               ParamReader reader(params);
               std::string drop = reader.String("drop", "");
               if (absl::Status s = reader.Finish(); !s.ok()) return s;
               return std::make_unique<FakeFilter>(name, drop);
             });
  r.Register(
      "fake-scorer",
      [](const std::string& name, const YAML::Node&) -> absl::StatusOr<std::unique_ptr<Plugin>> {
        return std::make_unique<FakeScorer>(name);
      });
  r.Register(
      "fake-picker",
      [](const std::string& name, const YAML::Node&) -> absl::StatusOr<std::unique_ptr<Plugin>> {
        return std::make_unique<FakePicker>(name);
      });
  r.Register(
      "fake-handler",
      [](const std::string& name, const YAML::Node&) -> absl::StatusOr<std::unique_ptr<Plugin>> {
        return std::make_unique<FakeHandler>(name);
      });
  r.Register(
      "fake-other",
      [](const std::string& name, const YAML::Node&) -> absl::StatusOr<std::unique_ptr<Plugin>> {
        return std::make_unique<OtherPlugin>(name);
      });
  return r;
}

class EndpointsFixture : public ::testing::Test {
 protected:
  EndpointsFixture() {
    for (const char* n : {"a", "b", "c"}) {
      storage_.push_back(std::make_unique<datastore::Endpoint>(datastore::MakeEndpoint(
          n, "ns", std::string("10.0.0.") + std::to_string(storage_.size() + 1), 8000)));
      candidates_.push_back(storage_.back().get());
    }
  }
  std::vector<std::unique_ptr<datastore::Endpoint>> storage_;
  std::vector<EndpointRef> candidates_;
  Request request_;
  CycleState state_;
};

using SchedulerProfileTest = EndpointsFixture;

TEST_F(SchedulerProfileTest, FiltersRunInOrderOnNarrowedCandidates) {
  std::vector<std::string> log;
  FakeFilter first("first", "b", &log);
  FakeFilter second("second", "", &log);
  FakePicker picker("picker");
  SchedulerProfile profile("p", {&first, &second}, {}, &picker);
  auto r = profile.Run(state_, request_, candidates_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(log, ElementsAre("first", "second"));
  EXPECT_THAT(first.received, ElementsAre(candidates_[0], candidates_[1], candidates_[2]));
  EXPECT_THAT(second.received, ElementsAre(candidates_[0], candidates_[2]));
  EXPECT_THAT(r->target_endpoints, ElementsAre(candidates_[0], candidates_[2]));
  ASSERT_EQ(picker.received.size(), 2u);
  EXPECT_EQ(picker.received[0].score, 0);
}

TEST_F(SchedulerProfileTest, EmptyFilterResultIsResourceExhaustedNamingFilter) {
  std::vector<std::string> log;
  FakeFilter dropper("drop-everything", "*", &log);
  FakeFilter after("after", "", &log);
  FakePicker picker("picker");
  SchedulerProfile profile("my-profile", {&dropper, &after}, {}, &picker);
  auto r = profile.Run(state_, request_, candidates_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("drop-everything"));
  EXPECT_THAT(r.status().message(), HasSubstr("my-profile"));
  EXPECT_THAT(log, ElementsAre("drop-everything"));
  EXPECT_TRUE(picker.received.empty());
}

TEST_F(SchedulerProfileTest, ScoresAreClampedWeightedAndSummed) {
  FakeScorer s1("s1", {{"a", 2.0}, {"b", -1.0}, {"c", 0.5}});
  FakeScorer s2("s2", {{"a", 0.5}, {"b", 0.25}, {"c", 1.0}});
  FakePicker picker("picker");
  SchedulerProfile profile("p", {}, {{&s1, 2.0}, {&s2, 0.5}}, &picker);
  auto r = profile.Run(state_, request_, candidates_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(picker.received.size(), 3u);
  EXPECT_EQ(picker.received[0].endpoint, candidates_[0]);
  EXPECT_DOUBLE_EQ(picker.received[0].score, 2.0 * 1.0 + 0.5 * 0.5);   // 2.0 clamped to 1
  EXPECT_DOUBLE_EQ(picker.received[1].score, 2.0 * 0.0 + 0.5 * 0.25);  // -1 clamped to 0
  EXPECT_DOUBLE_EQ(picker.received[2].score, 2.0 * 0.5 + 0.5 * 1.0);
}

TEST_F(SchedulerProfileTest, NonFiniteScoresCountAsZero) {
  FakeScorer s("s",
               {{"a", std::nan("")}, {"b", std::numeric_limits<double>::infinity()}, {"c", 0.5}});
  FakePicker picker("picker");
  SchedulerProfile profile("p", {}, {{&s, 1.0}}, &picker);
  auto r = profile.Run(state_, request_, candidates_);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(picker.received.size(), 3u);
  EXPECT_EQ(picker.received[0].score, 0.0);
  EXPECT_EQ(picker.received[1].score, 0.0);
  EXPECT_EQ(picker.received[2].score, 0.5);
}

TEST_F(SchedulerProfileTest, PickerChoosingNothingIsResourceExhausted) {
  class EmptyPicker : public Picker {
   public:
    using Picker::Picker;
    std::string_view Type() const override { return "empty"; }
    std::vector<EndpointRef> Pick(CycleState&, std::vector<ScoredEndpoint>) override { return {}; }
  } picker("nothing-picker");
  SchedulerProfile profile("p", {}, {}, &picker);
  auto r = profile.Run(state_, request_, candidates_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("nothing-picker"));
}

// Builds a scheduler from YAML; keeps the plugin set alive.
struct Built {
  std::unique_ptr<config::PluginSet> plugins;
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler;
};

Built Build(const std::string& body) {
  auto config = config::ParseEndpointPickerConfig(
      "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n" + body);
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return {nullptr, config.status()};
  PluginRegistry registry = TestRegistry();
  auto plugins = config::InstantiatePlugins(*config, registry);
  EXPECT_TRUE(plugins.ok()) << plugins.status();
  if (!plugins.ok()) return {nullptr, plugins.status()};
  Built b;
  b.plugins = *std::move(plugins);
  b.scheduler = BuildScheduler(*config, *b.plugins, registry);
  return b;
}

using BuildSchedulerTest = EndpointsFixture;

TEST_F(BuildSchedulerTest, NoProfilesMakesDefaultWithEveryFilterScorerPicker) {
  Built b = Build(R"(
plugins:
- {name: f1, type: fake-filter}
- {name: s1, type: fake-scorer}
- {name: other, type: fake-other}
- {name: p1, type: fake-picker}
- {name: f2, type: fake-filter}
- {name: s2, type: fake-scorer}
)");
  ASSERT_TRUE(b.scheduler.ok()) << b.scheduler.status();
  const auto& profiles = (*b.scheduler)->profiles();
  ASSERT_EQ(profiles.size(), 1u);
  ASSERT_EQ(profiles.count("default"), 1u);
  const SchedulerProfile& p = *profiles.at("default");
  ASSERT_EQ(p.filters().size(), 2u);
  EXPECT_EQ(p.filters()[0]->Name(), "f1");
  EXPECT_EQ(p.filters()[1]->Name(), "f2");
  ASSERT_EQ(p.scorers().size(), 2u);
  EXPECT_EQ(p.scorers()[0].scorer->Name(), "s1");
  EXPECT_EQ(p.scorers()[1].scorer->Name(), "s2");
  EXPECT_EQ(p.scorers()[0].weight, 1.0);
  ASSERT_NE(p.picker(), nullptr);
  EXPECT_EQ(p.picker()->Name(), "p1");
  // A single-profile-handler was created and added to the plugin set.
  Plugin* handler = b.plugins->Find("single-profile-handler");
  ASSERT_NE(handler, nullptr);
  EXPECT_EQ(handler->Type(), kSingleProfileHandlerType);

  auto result = (*b.scheduler)->Schedule(request_, candidates_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->primary_profile, "default");
  EXPECT_THAT(result->Primary().target_endpoints,
              ElementsAre(candidates_[0], candidates_[1], candidates_[2]));
}

TEST_F(BuildSchedulerTest, ProfileWithoutPickerGetsFirstDeclaredPicker) {
  Built b = Build(R"(
plugins:
- {name: s, type: fake-scorer}
- {name: first-picker, type: fake-picker}
- {name: second-picker, type: random-picker}
schedulingProfiles:
- name: only
  plugins:
  - pluginRef: s
)");
  ASSERT_TRUE(b.scheduler.ok()) << b.scheduler.status();
  const SchedulerProfile& p = *(*b.scheduler)->profiles().at("only");
  ASSERT_NE(p.picker(), nullptr);
  EXPECT_EQ(p.picker()->Name(), "first-picker");
  EXPECT_EQ(b.plugins->Find("max-score-picker"), nullptr);
}

TEST_F(BuildSchedulerTest, ProfileWithoutAnyPickerGetsCreatedMaxScorePicker) {
  Built b = Build(R"(
plugins:
- {name: s, type: fake-scorer}
schedulingProfiles:
- name: only
  plugins:
  - pluginRef: s
)");
  ASSERT_TRUE(b.scheduler.ok()) << b.scheduler.status();
  const SchedulerProfile& p = *(*b.scheduler)->profiles().at("only");
  ASSERT_NE(p.picker(), nullptr);
  EXPECT_EQ(p.picker()->Type(), kMaxScorePickerType);
  EXPECT_EQ(p.picker(), b.plugins->Find("max-score-picker"));
}

TEST_F(BuildSchedulerTest, CreatedDefaultAvoidsTakenName) {
  // A declared plugin already uses the name "max-score-picker" (with another type).
  Built b = Build(R"(
plugins:
- {name: max-score-picker, type: fake-other}
- {name: s, type: fake-scorer}
schedulingProfiles:
- name: only
  plugins:
  - pluginRef: s
)");
  ASSERT_TRUE(b.scheduler.ok()) << b.scheduler.status();
  const SchedulerProfile& p = *(*b.scheduler)->profiles().at("only");
  ASSERT_NE(p.picker(), nullptr);
  EXPECT_EQ(p.picker()->Type(), kMaxScorePickerType);
  EXPECT_EQ(p.picker()->Name(), "max-score-picker-2");
  EXPECT_EQ(b.plugins->Find("max-score-picker")->Type(), "fake-other");
}

TEST_F(BuildSchedulerTest, DeclaredHandlerIsUsed) {
  Built b = Build(R"(
plugins:
- {name: h, type: single-profile-handler}
- {name: p, type: fake-picker}
)");
  ASSERT_TRUE(b.scheduler.ok()) << b.scheduler.status();
  EXPECT_EQ(b.plugins->All().size(), 2u);  // nothing created
  auto result = (*b.scheduler)->Schedule(request_, candidates_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->primary_profile, "default");
}

TEST_F(BuildSchedulerTest, TwoProfilesWithoutHandlerRejected) {
  Built b = Build(R"(
plugins:
- {name: p, type: fake-picker}
schedulingProfiles:
- name: one
  plugins: [{pluginRef: p}]
- name: two
  plugins: [{pluginRef: p}]
)");
  ASSERT_FALSE(b.scheduler.ok());
  EXPECT_EQ(b.scheduler.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(b.scheduler.status().message(), HasSubstr("profile handler"));
}

TEST_F(BuildSchedulerTest, TwoProfilesWithHandlerRunBoth) {
  Built b = Build(R"(
plugins:
- {name: h, type: fake-handler}
- {name: keep-a, type: fake-filter, parameters: {drop: b}}
- {name: p, type: fake-picker}
schedulingProfiles:
- name: one
  plugins: [{pluginRef: keep-a}, {pluginRef: p}]
- name: two
  plugins: [{pluginRef: p}]
)");
  ASSERT_TRUE(b.scheduler.ok()) << b.scheduler.status();
  auto result = (*b.scheduler)->Schedule(request_, candidates_);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->profile_results.size(), 2u);
  EXPECT_EQ(result->primary_profile, "one");
  EXPECT_THAT(result->profile_results.at("one").target_endpoints,
              ElementsAre(candidates_[0], candidates_[2]));
  EXPECT_THAT(result->profile_results.at("two").target_endpoints,
              ElementsAre(candidates_[0], candidates_[1], candidates_[2]));
}

TEST_F(BuildSchedulerTest, SingleProfileHandlerWithTwoProfilesRejected) {
  Built b = Build(R"(
plugins:
- {name: h, type: single-profile-handler}
- {name: p, type: fake-picker}
schedulingProfiles:
- name: one
  plugins: [{pluginRef: p}]
- name: two
  plugins: [{pluginRef: p}]
)");
  ASSERT_FALSE(b.scheduler.ok());
  EXPECT_THAT(b.scheduler.status().message(), HasSubstr("\"h\""));
}

TEST_F(BuildSchedulerTest, TwoHandlersRejected) {
  Built b = Build(R"(
plugins:
- {name: h1, type: single-profile-handler}
- {name: h2, type: fake-handler}
)");
  ASSERT_FALSE(b.scheduler.ok());
  EXPECT_EQ(b.scheduler.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(b.scheduler.status().message(), HasSubstr("h1"));
  EXPECT_THAT(b.scheduler.status().message(), HasSubstr("h2"));
}

TEST_F(BuildSchedulerTest, ScorerWeightDefaultsToOne) {
  Built b = Build(R"(
plugins:
- {name: light, type: fake-scorer}
- {name: heavy, type: fake-scorer}
schedulingProfiles:
- name: p
  plugins:
  - pluginRef: light
  - pluginRef: heavy
    weight: 3.5
)");
  ASSERT_TRUE(b.scheduler.ok()) << b.scheduler.status();
  const SchedulerProfile& p = *(*b.scheduler)->profiles().at("p");
  ASSERT_EQ(p.scorers().size(), 2u);
  EXPECT_EQ(p.scorers()[0].scorer->Name(), "light");
  EXPECT_DOUBLE_EQ(p.scorers()[0].weight, 1.0);
  EXPECT_EQ(p.scorers()[1].scorer->Name(), "heavy");
  EXPECT_DOUBLE_EQ(p.scorers()[1].weight, 3.5);
}

TEST_F(BuildSchedulerTest, Rejected) {
  struct Case {
    const char* name;
    const char* yaml;
    std::vector<std::string> want;
  } cases[] = {
      {"weight on a filter",
       R"(
plugins:
- {name: f, type: fake-filter}
schedulingProfiles:
- name: p
  plugins: [{pluginRef: f, weight: 2}]
)",
       {"\"p\"", "\"f\"", "weight"}},
      {"weight on a picker",
       R"(
plugins:
- {name: k, type: fake-picker}
schedulingProfiles:
- name: p
  plugins: [{pluginRef: k, weight: 1}]
)",
       {"\"k\"", "weight"}},
      {"negative weight",
       R"(
plugins:
- {name: s, type: fake-scorer}
schedulingProfiles:
- name: p
  plugins: [{pluginRef: s, weight: -1}]
)",
       {"\"s\"", "weight"}},
      {"non-scheduling plugin",
       R"(
plugins:
- {name: o, type: fake-other}
schedulingProfiles:
- name: p
  plugins: [{pluginRef: o}]
)",
       {"\"p\"", "\"o\"", "fake-other", "not a filter, scorer or picker"}},
      {"handler in a profile",
       R"(
plugins:
- {name: h, type: single-profile-handler}
schedulingProfiles:
- name: p
  plugins: [{pluginRef: h}]
)",
       {"\"h\"", "not a filter, scorer or picker"}},
      {"two pickers in a profile",
       R"(
plugins:
- {name: k1, type: fake-picker}
- {name: k2, type: random-picker}
schedulingProfiles:
- name: p
  plugins: [{pluginRef: k1}, {pluginRef: k2}]
)",
       {"\"k2\"", "k1"}},
  };
  for (const auto& c : cases) {
    Built b = Build(c.yaml);
    ASSERT_FALSE(b.scheduler.ok()) << c.name;
    EXPECT_EQ(b.scheduler.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    for (const auto& w : c.want) {
      EXPECT_THAT(b.scheduler.status().message(), HasSubstr(w)) << c.name;
    }
  }
}

TEST_F(BuildSchedulerTest, UndeclaredRefRejected) {
  // Not reachable through ParseEndpointPickerConfig (it validates refs); a hand-built config.
  config::EndpointPickerConfig config;
  config::ProfileSpec spec;
  spec.name = "p";
  spec.plugins.push_back({"ghost", std::nullopt});
  config.profiles.push_back(spec);
  config::PluginSet plugins;
  PluginRegistry registry = TestRegistry();
  auto s = BuildScheduler(config, plugins, registry);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("\"ghost\""));
}

TEST_F(BuildSchedulerTest, AllProfilesFailingReturnsTheFilterError) {
  Built b = Build(R"(
plugins:
- {name: none-left, type: fake-filter, parameters: {drop: "*"}}
)");
  ASSERT_TRUE(b.scheduler.ok()) << b.scheduler.status();
  auto result = (*b.scheduler)->Schedule(request_, candidates_);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(result.status().message(), HasSubstr("none-left"));
}

}  // namespace
}  // namespace epp::scheduling
