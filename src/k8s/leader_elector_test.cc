#include "k8s/leader_elector.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <mutex>

#include "common/strings.h"
#include "testing/scripted_api_server.h"
#include "testing/wait.h"

namespace epp::k8s {
namespace {

using testing::ScriptedApiServer;

// One Lease with the API server's optimistic concurrency: PUT needs the current
// resourceVersion (409 otherwise), POST of an existing Lease is 409.
class FakeLeaseStore {
 public:
  ScriptedApiServer::Reply Handle(const ScriptedApiServer::Request& r) {
    std::lock_guard<std::mutex> lock(mu_);
    ScriptedApiServer::Reply reply;
    if (fail_) {
      reply.status = 503;
      reply.body = R"({"kind":"Status","code":503,"message":"etcd down"})";
      return reply;
    }
    if (r.method == "GET") {
      if (body_.empty()) {
        reply.status = 404;
        reply.body = R"({"kind":"Status","code":404,"reason":"NotFound"})";
      } else {
        reply.body = Current();
      }
    } else if (r.method == "POST") {
      if (!body_.empty()) {
        reply.status = 409;
        reply.body = R"({"kind":"Status","code":409,"reason":"AlreadyExists"})";
      } else {
        Store(r.body);
        reply.status = 201;
        reply.body = Current();
      }
    } else if (r.method == "PUT") {
      simdjson::dom::parser p;
      std::string_view rv;
      if (p.parse(r.body)["metadata"]["resourceVersion"].get(rv) != simdjson::SUCCESS) rv = {};
      if (rv != StrCat("rv", version_)) {
        reply.status = 409;
        reply.body = R"({"kind":"Status","code":409,"reason":"Conflict"})";
      } else {
        Store(r.body);
        reply.body = Current();
      }
    }
    return reply;
  }
  std::string Holder() {
    std::lock_guard<std::mutex> lock(mu_);
    if (body_.empty()) return "";
    simdjson::dom::parser p;
    std::string_view h;
    if (p.parse(body_)["spec"]["holderIdentity"].get(h) != simdjson::SUCCESS) h = {};
    return std::string(h);
  }
  int64_t Transitions() {
    std::lock_guard<std::mutex> lock(mu_);
    simdjson::dom::parser p;
    int64_t t = -1;
    if (p.parse(body_)["spec"]["leaseTransitions"].get(t) != simdjson::SUCCESS) t = {};
    return t;
  }
  void SetFailing(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = fail;
  }

 private:
  void Store(const std::string& body) {
    ++version_;
    // Replace whatever resourceVersion the client sent with the new one.
    simdjson::dom::parser p;
    std::string spec = simdjson::minify(p.parse(body)["spec"]);
    body_ = StrCat(R"({"metadata":{"name":"l","resourceVersion":"rv)", version_, R"("},"spec":)",
                   spec, "}");
  }
  std::string Current() const { return body_; }
  std::mutex mu_;
  std::string body_;
  int version_ = 0;
  bool fail_ = false;
};

LeaderElectionOptions Fast(const std::string& id) {
  LeaderElectionOptions o;
  o.lease_namespace = "ns";
  o.lease_name = "l";
  o.identity = id;
  o.lease_duration = std::chrono::milliseconds(1500);
  o.renew_deadline = std::chrono::milliseconds(800);
  o.retry_period = std::chrono::milliseconds(100);
  return o;
}

std::shared_ptr<const RestConfig> ConfigFor(const ScriptedApiServer& server) {
  auto c = std::make_shared<RestConfig>();
  c->scheme = "http";
  c->host = "127.0.0.1";
  c->port = server.port();
  c->token = std::make_shared<TokenSource>("t");
  return c;
}

TEST(LeaderElectorTest, OneLeaderAndAHandoverOnRelease) {
  FakeLeaseStore store;
  ScriptedApiServer server([&](const auto& r) { return store.Handle(r); });
  // A lease far longer than the test: b can only get it through a's release.
  LeaderElectionOptions slow_a = Fast("a"), slow_b = Fast("b");
  slow_a.lease_duration = slow_b.lease_duration = std::chrono::seconds(600);
  slow_a.renew_deadline = slow_b.renew_deadline = std::chrono::seconds(300);
  auto a = std::make_unique<LeaderElector>(ConfigFor(server), slow_a);
  LeaderElector b(ConfigFor(server), slow_b);
  a->Start();
  ASSERT_TRUE(testing::WaitFor([&] { return a->IsLeader(); }));
  b.Start();
  // b keeps trying while a renews; it never becomes leader meanwhile.
  ASSERT_TRUE(testing::WaitFor([&] { return server.Count("GET", "/leases/l") > 20; }));
  EXPECT_FALSE(b.IsLeader());
  EXPECT_EQ(store.Holder(), "a");
  EXPECT_NE(server.requests()[0].target.find("/apis/coordination.k8s.io/v1/namespaces/ns/leases"),
            std::string::npos);

  a->Stop();  // releases
  EXPECT_FALSE(a->IsLeader());
  EXPECT_TRUE(store.Holder().empty() || store.Holder() == "b") << store.Holder();
  ASSERT_TRUE(testing::WaitFor([&] { return b.IsLeader(); }));
  EXPECT_EQ(store.Holder(), "b");
  EXPECT_EQ(store.Transitions(), 1);
  b.Stop();
}

TEST(LeaderElectorTest, TakesOverAnExpiredLeaseAndStepsDownWhenRenewalsFail) {
  FakeLeaseStore store;
  ScriptedApiServer server([&](const auto& r) { return store.Handle(r); });
  std::atomic<int> changes{0};
  LeaderElector a(ConfigFor(server), Fast("a"), [&](bool) { ++changes; });
  a.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return a.IsLeader(); }));
  // The API server fails every request: after the renew deadline a stops being leader.
  store.SetFailing(true);
  ASSERT_TRUE(testing::WaitFor([&] { return !a.IsLeader(); }));
  EXPECT_NE(a.last_error().find("503"), std::string::npos) << a.last_error();
  store.SetFailing(false);
  ASSERT_TRUE(testing::WaitFor([&] { return a.IsLeader(); }));
  EXPECT_TRUE(testing::WaitFor([&] { return changes.load() == 3; })) << changes.load();
  a.Stop();

  // A holder that vanished without releasing: its Lease expires by b's clock and b takes it.
  FakeLeaseStore store2;
  ScriptedApiServer server2([&](const auto& r) { return store2.Handle(r); });
  {
    LeaderElector ghost(ConfigFor(server2), Fast("ghost"));
    ghost.Start();
    ASSERT_TRUE(testing::WaitFor([&] { return ghost.IsLeader(); }));
    store2.SetFailing(true);  // the release on Stop() cannot get through
    ghost.Stop();
    store2.SetFailing(false);
  }
  EXPECT_EQ(store2.Holder(), "ghost");
  LeaderElector b(ConfigFor(server2), Fast("b"));
  b.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return b.IsLeader(); }));
  EXPECT_EQ(store2.Holder(), "b");
  b.Stop();
}

TEST(LeaderElectorTest, LeaseNameIsTheReferences) {
  EXPECT_EQ(LeaseNameForPool("prod", "llama"),
            "epp-prod-llama.gateway-api-inference-extension.sigs.k8s.io");
  EXPECT_NE(DefaultIdentity(), DefaultIdentity());
}

}  // namespace
}  // namespace epp::k8s
