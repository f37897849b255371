#include "datalayer/scraper.h"

#include <atomic>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "testing/http_test_server.h"
#include "testing/wait.h"

namespace epp::datalayer {
namespace {

using ::epp::testing::HttpTestServer;
using ::epp::testing::WaitFor;

std::string VllmPage(int waiting, int running, double kv) {
  return "# TYPE vllm:num_requests_waiting gauge\n"
         "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} " +
         std::to_string(waiting) +
         ".0\n"
         "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} " +
         std::to_string(running) + ".0\nvllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} " +
         std::to_string(kv) + "\n";
}

ScraperOptions FastOptions() {
  ScraperOptions o;
  o.interval = std::chrono::milliseconds(20);
  o.timeout = std::chrono::milliseconds(300);
  o.membership_interval = std::chrono::milliseconds(10);
  return o;
}

std::shared_ptr<const datastore::Metrics> MetricsOf(const datastore::Datastore& ds,
                                                    const std::string& key) {
  for (const auto& e : ds.GetSnapshot()->endpoints) {
    if (e->Key() == key) return e->metrics->Load();
  }
  return nullptr;
}

TEST(ScraperTest, PublishesEachEndpointsMetricsAndFollowsChanges) {
  std::atomic<int> waiting{3};
  HttpTestServer a([&](const std::string& target) {
    EXPECT_EQ(target, "/metrics");
    return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 200,
                                 VllmPage(waiting.load(), 5, 0.25)};
  });
  HttpTestServer b([](const std::string&) {
    return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 200,
                                 "sglang:num_queue_reqs 9\nsglang:num_running_reqs 1\n"
                                 "sglang:token_usage 0.5\n"};
  });
  datastore::Datastore ds;
  ds.ReplaceAll({datastore::MakeEndpoint("a", "ns", "127.0.0.1", a.port()),
                 datastore::MakeEndpoint("b", "ns", "127.0.0.1", b.port(),
                                         {{"inference.networking.k8s.io/engine-type", "sglang"}})});
  Scraper scraper(ds, FastOptions());
  scraper.Start();
  ASSERT_TRUE(WaitFor([&] { return MetricsOf(ds, "ns/a")->waiting_queue_size == 3; }));
  auto ma = MetricsOf(ds, "ns/a");
  EXPECT_EQ(ma->running_requests_size, 5);
  EXPECT_DOUBLE_EQ(ma->kv_cache_usage_percent, 0.25);
  EXPECT_NE(ma->update_time, std::chrono::system_clock::time_point{});
  ASSERT_TRUE(WaitFor([&] { return MetricsOf(ds, "ns/b")->waiting_queue_size == 9; }));
  EXPECT_DOUBLE_EQ(MetricsOf(ds, "ns/b")->kv_cache_usage_percent, 0.5);

  // Fresh numbers replace old ones on the next polls; one connection serves them all.
  waiting = 11;
  EXPECT_TRUE(WaitFor([&] { return MetricsOf(ds, "ns/a")->waiting_queue_size == 11; }));
  EXPECT_GE(a.requests(), 2);
  EXPECT_EQ(a.connections(), 1);
  EXPECT_EQ(scraper.Statuses().at("ns/a").last_error, "");
  scraper.Stop();
}

TEST(ScraperTest, RemovedEndpointStopsBeingPolled) {
  HttpTestServer a([](const std::string&) {
    return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 200, VllmPage(1, 1, 0.1)};
  });
  datastore::Datastore ds;
  ds.ReplaceAll({datastore::MakeEndpoint("a", "ns", "127.0.0.1", a.port())});
  Scraper scraper(ds, FastOptions());
  scraper.Start();
  ASSERT_TRUE(WaitFor([&] { return a.requests() >= 2; }));
  ds.ReplaceAll({});
  ASSERT_TRUE(WaitFor([&] { return scraper.Statuses().empty(); }));
  // Polling has stopped: over ten more intervals at most the poll that was in flight at the
  // removal lands (a negative check has to wait some time; it asserts no duration).
  int settled = a.requests();
  std::this_thread::sleep_for(10 * FastOptions().interval);
  EXPECT_LE(a.requests(), settled + 1);
  scraper.Stop();
}

TEST(ScraperTest, ErrorsKeepTheLastGoodMetricsAndRecover) {
  std::atomic<int> mode{0};  // 0 good, 1 HTTP 500, 2 garbage page, 3 hang
  HttpTestServer a([&](const std::string&) {
    switch (mode.load()) {
      case 1:
        return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 500, "oops"};
      case 2:
        return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 200,
                                     "vllm:num_requests_waiting{engine=\"0 7\n"};
      case 3:
        return HttpTestServer::Reply{HttpTestServer::Action::kHang, 200, ""};
      default:
        return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 200, VllmPage(4, 2, 0.5)};
    }
  });
  datastore::Datastore ds;
  ds.ReplaceAll({datastore::MakeEndpoint("a", "ns", "127.0.0.1", a.port())});
  Scraper scraper(ds, FastOptions());
  scraper.Start();
  ASSERT_TRUE(WaitFor([&] { return MetricsOf(ds, "ns/a")->waiting_queue_size == 4; }));
  for (int m : {1, 2, 3}) {
    mode = m;
    ASSERT_TRUE(WaitFor([&] { return !scraper.Statuses().at("ns/a").last_error.empty(); }))
        << "mode " << m;
    // While polls keep failing, the last good metrics stay published with their old read time.
    auto kept = MetricsOf(ds, "ns/a");
    uint64_t failures = scraper.Statuses().at("ns/a").failures;
    ASSERT_TRUE(WaitFor([&] { return scraper.Statuses().at("ns/a").failures >= failures + 2; }))
        << "mode " << m;
    EXPECT_EQ(MetricsOf(ds, "ns/a")->update_time, kept->update_time) << "mode " << m;
    EXPECT_EQ(MetricsOf(ds, "ns/a")->waiting_queue_size, 4) << "mode " << m;
    mode = 0;
    ASSERT_TRUE(WaitFor([&] { return scraper.Statuses().at("ns/a").last_error.empty(); }))
        << "mode " << m;
  }
  scraper.Stop();
}

TEST(ScraperTest, UnknownEngineIsReportedAndNotPolled) {
  HttpTestServer a([](const std::string&) { return HttpTestServer::Reply{}; });
  datastore::Datastore ds;
  ds.ReplaceAll({datastore::MakeEndpoint("a", "ns", "127.0.0.1", a.port(),
                                         {{"inference.networking.k8s.io/engine-type", "nope"}})});
  Scraper scraper(ds, FastOptions());
  scraper.Start();
  ASSERT_TRUE(WaitFor([&] {
    auto s = scraper.Statuses();
    return s.count("ns/a") > 0 && s.at("ns/a").last_error.find("nope") != std::string::npos;
  }));
  EXPECT_EQ(a.requests(), 0);
  scraper.Stop();
}

}  // namespace
}  // namespace epp::datalayer

namespace epp::datalayer {
namespace {

// Stopping while a GET hangs must release every target and connection (the asan-ubsan preset's
// leak check fails this test if the pending callback keeps them alive).
TEST(ScraperStopTest, StopWhileAGetIsInFlight) {
  HttpTestServer hanging([](const std::string&) {
    return HttpTestServer::Reply{HttpTestServer::Action::kHang, 200, ""};
  });
  datastore::Datastore ds;
  ds.ReplaceAll({datastore::MakeEndpoint("a", "ns", "127.0.0.1", hanging.port())});
  auto options = FastOptions();
  options.timeout = std::chrono::seconds(30);  // the GET stays in flight until Stop
  auto scraper = std::make_unique<Scraper>(ds, options);
  scraper->Start();
  ASSERT_TRUE(WaitFor([&] { return hanging.requests() >= 1; }));
  scraper->Stop();
  scraper.reset();
  EXPECT_EQ(hanging.requests(), 1);
}

}  // namespace
}  // namespace epp::datalayer

namespace epp::datalayer {
namespace {

TEST(AlignToSlotTest, RoundsUpToTheTenthOfTheInterval) {
  using std::chrono::milliseconds;
  using std::chrono::nanoseconds;
  using TP = std::chrono::steady_clock::time_point;
  auto at = [](int64_t ns) {
    return TP(std::chrono::duration_cast<TP::duration>(nanoseconds(ns)));
  };
  struct Case {
    int64_t in_ns;
    milliseconds interval;
    int64_t want_ns;
  } cases[] = {
      {0, milliseconds(50), 0},          // on the grid already
      {1, milliseconds(50), 5'000'000},  // 50 ms / 10 = 5 ms slots
      {5'000'000, milliseconds(50), 5'000'000},
      {5'000'001, milliseconds(50), 10'000'000},
      {1, milliseconds(5), 1'000'000},  // slots are at least 1 ms
      {1'000'001, milliseconds(1000), 100'000'000},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(AlignToSlot(at(c.in_ns), c.interval), at(c.want_ns))
        << c.in_ns << " / " << c.interval.count();
  }
}

}  // namespace
}  // namespace epp::datalayer
