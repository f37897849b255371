// session-affinity-scorer and session-affinity-filter: bindings, expiry, bounds, parameters,
// and the filter built from config text.
#include "scheduling/plugins/session_affinity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "testing/endpoints.h"
#include "testing/scheduler_from_yaml.h"

namespace epp::scheduling {
namespace {

using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using testing::TestEndpoints;

// A request with the given headers (lower-case names).
struct TestRequest {
  explicit TestRequest(std::map<std::string, std::string, std::less<>> h) : headers(std::move(h)) {
    req.headers = &headers;
  }
  static TestRequest Header(const std::string& name, const std::string& value) {
    std::map<std::string, std::string, std::less<>> h;
    h[name] = value;
    return TestRequest(std::move(h));
  }
  static TestRequest Session(const std::string& id) { return Header("x-session-id", id); }
  TestRequest(const TestRequest& o) : TestRequest(o.headers) {}
  std::map<std::string, std::string, std::less<>> headers;
  Request req;
};

SchedulingResult ResultFor(EndpointRef e, const std::string& profile = "default") {
  SchedulingResult r;
  r.primary_profile = profile;
  r.profile_results[profile].target_endpoints = {e};
  return r;
}

// A steady clock the test moves by hand.
struct FakeClock {
  std::chrono::steady_clock::time_point now{seconds(1000)};
  MonotonicClock fn() {
    return [this] { return now; };
  }
};

SessionAffinityParams Params(const std::string& yaml = "{}") {
  auto p = ParseSessionAffinityParams(YAML::Load(yaml));
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : SessionAffinityParams{};
}

std::vector<double> Scores(SessionAffinityScorer& s, const Request& r,
                           std::span<const EndpointRef> cands) {
  std::vector<double> out(cands.size(), -1);
  CycleState state;
  s.Score(state, r, cands, out);
  return out;
}

void Bind(SessionBindings& b, const TestRequest& r, EndpointRef e) {
  CycleState state;
  b.PreRequest(state, r.req, ResultFor(e));
}

TEST(SessionAffinityScorerTest, ScoresTable) {
  TestEndpoints eps;
  for (int i = 0; i < 3; ++i) eps.Add();
  FakeClock clock;
  SessionAffinityScorer s("s", Params(), clock.fn());
  Bind(s, TestRequest::Session("bound-to-1"), eps[1]);
  Bind(s, TestRequest::Session("bound-to-2"), eps[2]);
  struct Case {
    const char* name;
    TestRequest request;
    std::vector<size_t> candidates;
    std::vector<double> want;
  } cases[] = {
      {"no header", TestRequest({}), {0, 1, 2}, {0, 0, 0}},
      {"empty id", TestRequest::Session(""), {0, 1, 2}, {0, 0, 0}},
      {"unbound session", TestRequest::Session("new"), {0, 1, 2}, {0, 0, 0}},
      {"bound", TestRequest::Session("bound-to-1"), {0, 1, 2}, {0, 1, 0}},
      {"bound, other order", TestRequest::Session("bound-to-1"), {1, 2, 0}, {1, 0, 0}},
      {"bound endpoint not a candidate", TestRequest::Session("bound-to-2"), {0, 1}, {0, 0}},
      {"other header ignored",
       TestRequest::Header("x-session-token", "bound-to-1"),
       {0, 1},
       {0, 0}},
      {"no candidates", TestRequest::Session("bound-to-1"), {}, {}},
  };
  for (const auto& c : cases) {
    std::vector<EndpointRef> cands;
    for (size_t i : c.candidates) cands.push_back(eps[i]);
    EXPECT_THAT(Scores(s, c.request.req, cands), ElementsAreArray(c.want)) << c.name;
  }
  // A request without headers at all.
  EXPECT_THAT(Scores(s, Request{}, eps.all()), ElementsAre(0, 0, 0));
}

TEST(SessionAffinityScorerTest, BindingExpiresAfterTtlAndIsRefreshedByUse) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  FakeClock clock;
  SessionAffinityScorer s("s", Params("{sessionIdConfig: {evictionTtlSeconds: 60}}"), clock.fn());
  auto r = TestRequest::Session("abc");
  Bind(s, r, eps[0]);
  clock.now += seconds(59);
  EXPECT_THAT(Scores(s, r.req, eps.all()), ElementsAre(1, 0));
  Bind(s, r, eps[0]);  // used again: lives 60 s from now
  clock.now += seconds(59);
  EXPECT_THAT(Scores(s, r.req, eps.all()), ElementsAre(1, 0));
  clock.now += seconds(1);  // exactly 60 s after the last use
  EXPECT_THAT(Scores(s, r.req, eps.all()), ElementsAre(0, 0));
}

TEST(SessionAffinityScorerTest, RebindsToWhereTheRequestWent) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  FakeClock clock;
  SessionAffinityScorer s("s", Params(), clock.fn());
  auto r = TestRequest::Session("abc");
  Bind(s, r, eps[0]);
  Bind(s, r, eps[1]);
  EXPECT_THAT(Scores(s, r.req, eps.all()), ElementsAre(0, 1));
  EXPECT_EQ(s.BoundEndpoint("abc"), eps[1]->Key());
  EXPECT_EQ(s.sessions(), 1u);
}

TEST(SessionAffinityScorerTest, BoundedByMaxSessionsLeastRecentlyUsedFirst) {
  TestEndpoints eps;
  eps.Add();
  FakeClock clock;
  SessionAffinityScorer s("s", Params("{sessionIdConfig: {maxSessions: 2}}"), clock.fn());
  Bind(s, TestRequest::Session("s1"), eps[0]);
  Bind(s, TestRequest::Session("s2"), eps[0]);
  Bind(s, TestRequest::Session("s1"), eps[0]);  // s1 used again: s2 is the least recent
  Bind(s, TestRequest::Session("s3"), eps[0]);
  EXPECT_EQ(s.sessions(), 2u);
  EXPECT_EQ(s.BoundEndpoint("s2"), "");
  EXPECT_EQ(s.BoundEndpoint("s1"), eps[0]->Key());
  EXPECT_EQ(s.BoundEndpoint("s3"), eps[0]->Key());
}

TEST(SessionAffinityScorerTest, ExpiredBindingsArePurgedWhenNewOnesAreMade) {
  TestEndpoints eps;
  eps.Add();
  FakeClock clock;
  SessionAffinityScorer s("s", Params("{sessionIdConfig: {evictionTtlSeconds: 10}}"), clock.fn());
  Bind(s, TestRequest::Session("s1"), eps[0]);
  clock.now += seconds(5);
  Bind(s, TestRequest::Session("s2"), eps[0]);
  clock.now += seconds(6);  // s1 expired, s2 not
  Bind(s, TestRequest::Session("s3"), eps[0]);
  EXPECT_EQ(s.sessions(), 2u);
  EXPECT_EQ(s.BoundEndpoint("s1"), "");
  EXPECT_EQ(s.BoundEndpoint("s2"), eps[0]->Key());
}

TEST(SessionAffinityScorerTest, OverlongIdentifiersGetNoAffinity) {
  TestEndpoints eps;
  eps.Add();
  FakeClock clock;
  SessionAffinityScorer s("s", Params(), clock.fn());
  auto longest = TestRequest::Session(std::string(kMaxSessionIdBytes, 'x'));
  auto too_long = TestRequest::Session(std::string(kMaxSessionIdBytes + 1, 'x'));
  Bind(s, too_long, eps[0]);
  EXPECT_EQ(s.sessions(), 0u);
  EXPECT_THAT(Scores(s, too_long.req, eps.all()), ElementsAre(0));
  Bind(s, longest, eps[0]);
  EXPECT_THAT(Scores(s, longest.req, eps.all()), ElementsAre(1));
}

TEST(SessionAffinityScorerTest, SourcesInOrderFirstNonEmptyWins) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  FakeClock clock;
  SessionAffinityScorer s(
      "s", Params("{sessionIdConfig: {sources: [{header: X-Conversation}, {header: x-user}]}}"),
      clock.fn());
  Bind(s, TestRequest::Header("x-conversation", "c1"), eps[0]);
  Bind(s, TestRequest::Header("x-user", "u1"), eps[1]);
  EXPECT_THAT(Scores(s, TestRequest({{"x-conversation", "c1"}, {"x-user", "u1"}}).req, eps.all()),
              ElementsAre(1, 0));
  EXPECT_THAT(Scores(s, TestRequest({{"x-conversation", ""}, {"x-user", "u1"}}).req, eps.all()),
              ElementsAre(0, 1));
  EXPECT_THAT(Scores(s, TestRequest::Session("c1").req, eps.all()), ElementsAre(0, 0));
}

TEST(SessionAffinityScorerTest, ProfileNameBindsThatProfilesTarget) {
  TestEndpoints eps;
  eps.Add();
  eps.Add();
  FakeClock clock;
  SessionAffinityScorer s("s", Params("{profileName: prefill}"), clock.fn());
  auto r = TestRequest::Session("abc");
  SchedulingResult result = ResultFor(eps[0], "decode");
  CycleState state;
  s.PreRequest(state, r.req, result);  // no prefill profile ran: nothing bound
  EXPECT_EQ(s.sessions(), 0u);
  result.profile_results["prefill"].target_endpoints = {eps[1]};
  s.PreRequest(state, r.req, result);
  EXPECT_EQ(s.BoundEndpoint("abc"), eps[1]->Key());
}

TEST(SessionAffinityFilterTest, FilterTable) {
  TestEndpoints eps;
  for (int i = 0; i < 3; ++i) eps.Add();
  FakeClock clock;
  SessionAffinityFilter f("f", Params(), clock.fn());
  EXPECT_EQ(f.Type(), "session-affinity-filter");
  Bind(f, TestRequest::Session("bound-to-1"), eps[1]);
  struct Case {
    const char* name;
    TestRequest request;
    std::vector<size_t> candidates;
    std::vector<size_t> want;
  } cases[] = {
      {"no session: all", TestRequest({}), {0, 1, 2}, {0, 1, 2}},
      {"unbound: all", TestRequest::Session("new"), {0, 1, 2}, {0, 1, 2}},
      {"bound and a candidate: only it", TestRequest::Session("bound-to-1"), {0, 1, 2}, {1}},
      {"bound elsewhere: all", TestRequest::Session("bound-to-1"), {0, 2}, {0, 2}},
      {"no candidates", TestRequest::Session("bound-to-1"), {}, {}},
  };
  for (const auto& c : cases) {
    std::vector<EndpointRef> cands, want;
    for (size_t i : c.candidates) cands.push_back(eps[i]);
    for (size_t i : c.want) want.push_back(eps[i]);
    CycleState state;
    EXPECT_THAT(f.FilterEndpoints(state, c.request.req, cands), ElementsAreArray(want)) << c.name;
  }
  clock.now += seconds(300);  // default TTL
  CycleState state;
  EXPECT_EQ(f.FilterEndpoints(state, TestRequest::Session("bound-to-1").req, eps.all()).size(), 3u);
}

TEST(SessionAffinityTest, Parameters) {
  SessionAffinityParams d = Params();
  EXPECT_EQ(d.headers, std::vector<std::string>{"x-session-id"});
  EXPECT_EQ(d.ttl, seconds(300));
  EXPECT_EQ(d.max_sessions, 100'000);
  EXPECT_EQ(d.profile_name, "");
  SessionAffinityParams p = Params(R"(
strategy: session_id
profileName: decode
sessionIdConfig:
  sources: [{header: X-Session-ID}]
  evictionTtlSeconds: 1.5
  evictionSweepSeconds: 10
  maxSessions: 7
)");
  EXPECT_EQ(p.headers, std::vector<std::string>{"x-session-id"});
  EXPECT_EQ(p.ttl, std::chrono::milliseconds(1500));
  EXPECT_EQ(p.max_sessions, 7);
  EXPECT_EQ(p.profile_name, "decode");

  struct Bad {
    const char* yaml;
    const char* message;
  } bad[] = {
      {"{strategy: encoded_endpoint_header}", "not supported"},
      {"{encodedEndpointHeaderConfig: {header: x-session-token}}", "not supported"},
      {"{strategy: sticky}", "strategy"},
      {"{ttl: 5m}", "ttl"},
      {"{sessionIdConfig: {sources: [{attribute: agent-identity}]}}", "attribute"},
      {"{sessionIdConfig: {sources: x-session-id}}", "sources"},
      {"{sessionIdConfig: {sources: []}}", "sources"},
      {"{sessionIdConfig: {sources: [{header: a, attribute: b}]}}", "sources"},
      {"{sessionIdConfig: {evictionTtlSeconds: 0}}", "evictionTtlSeconds"},
      {"{sessionIdConfig: {evictionSweepSeconds: -1}}", "evictionSweepSeconds"},
      {"{sessionIdConfig: {maxSessions: 0}}", "maxSessions"},
      {"{sessionIdConfig: {ttl: 3}}", "ttl"},
      {"{sessionIdConfig: 5}", "sessionIdConfig"},
  };
  for (const auto& b : bad) {
    for (auto create : {SessionAffinityScorer::Create, SessionAffinityFilter::Create}) {
      auto got = create("s", YAML::Load(b.yaml));
      ASSERT_FALSE(got.ok()) << b.yaml;
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << b.yaml;
      EXPECT_THAT(std::string(got.status().message()), HasSubstr(b.message)) << b.yaml;
    }
  }
}

TEST(SessionAffinityTest, ConcurrentUseIsSafe) {
  TestEndpoints eps;
  for (int i = 0; i < 4; ++i) eps.Add();
  SessionAffinityScorer s("s", Params("{sessionIdConfig: {maxSessions: 50}}"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        auto r = TestRequest::Session("s" + std::to_string((i * 7 + t) % 80));
        Scores(s, r.req, eps.all());
        Bind(s, r, eps[static_cast<size_t>((i + t) % 4)]);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(s.sessions(), 50u);
}

TEST(SessionAffinityFromConfigTest, FilterPinsASessionAgainstTheScorers) {
  auto built = testing::SchedulerFromYaml(R"(
apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: session-affinity-filter
  parameters:
    strategy: session_id
    sessionIdConfig: {sources: [{header: x-session-id}], evictionTtlSeconds: 300}
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: session-affinity-filter
  - pluginRef: queue-scorer
)");
  ASSERT_TRUE(built.ok()) << built.status();
  ASSERT_EQ(built->scheduler->hooks().pre_request.size(), 1u);
  TestEndpoints eps;
  eps.Add(TestEndpoints::M(0, 0));
  eps.Add(TestEndpoints::M(0, 0));
  auto r = TestRequest::Session("conversation-1");
  auto first = built->scheduler->Schedule(r.req, eps.all());
  ASSERT_TRUE(first.ok());
  EndpointRef bound = first->Primary().target_endpoints.front();
  // The bound endpoint becomes the busier one; the queue scorer alone would move the session.
  bound->metrics->Store(std::make_shared<const datastore::Metrics>(TestEndpoints::M(10, 0)));
  for (int i = 0; i < 5; ++i) {
    auto again = built->scheduler->Schedule(r.req, eps.all());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->Primary().target_endpoints.front(), bound);
  }
  // Another session goes by queue.
  auto other = built->scheduler->Schedule(TestRequest::Session("conversation-2").req, eps.all());
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->Primary().target_endpoints.front(), bound);
}

}  // namespace
}  // namespace epp::scheduling
