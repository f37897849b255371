#include "k8s/reflector.h"

#include <gtest/gtest.h>

#include <mutex>

#include "common/strings.h"
#include "testing/scripted_api_server.h"
#include "testing/wait.h"

namespace epp::k8s {
namespace {

using testing::ScriptedApiServer;

// Records what the reflector hands over, as strings.
class RecordingHandler : public ReflectorHandler {
 public:
  void OnListBegin() override { Add("begin"); }
  void OnListItem(simdjson::dom::element o) override { Add("item:" + Name(o)); }
  void OnListEnd() override { Add("end"); }
  void OnUpsert(simdjson::dom::element o) override { Add("upsert:" + Name(o)); }
  void OnDelete(simdjson::dom::element o) override { Add("delete:" + Name(o)); }
  std::vector<std::string> log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  bool Has(const std::string& entry) const {
    auto l = log();
    return std::find(l.begin(), l.end(), entry) != l.end();
  }

 private:
  static std::string Name(simdjson::dom::element o) {
    std::string_view n;
    if (o["metadata"]["name"].get(n) != simdjson::SUCCESS) n = {};
    return std::string(n);
  }
  void Add(std::string s) {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(std::move(s));
  }
  mutable std::mutex mu_;
  std::vector<std::string> log_;
};

std::string Obj(const std::string& name, const std::string& rv) {
  return StrCat(R"({"metadata":{"name":")", name, R"(","resourceVersion":")", rv, R"("}})");
}
std::string List(const std::vector<std::string>& items, const std::string& rv,
                 const std::string& cont = "") {
  return StrCat(R"({"kind":"PodList","metadata":{"resourceVersion":")", rv, R"(","continue":")",
                cont, R"("},"items":[)", StrJoin(items, ","), "]}");
}
std::string Event(const std::string& type, const std::string& object) {
  return StrCat(R"({"type":")", type, R"(","object":)", object, "}\n");
}

std::shared_ptr<const RestConfig> ConfigFor(const ScriptedApiServer& server) {
  auto c = std::make_shared<RestConfig>();
  c->scheme = "http";
  c->host = "127.0.0.1";
  c->port = server.port();
  c->token = std::make_shared<TokenSource>("secret-token");
  return c;
}

ReflectorOptions Options() {
  ReflectorOptions o;
  o.resource = "pods";
  o.collection_path = "/api/v1/namespaces/ns/pods";
  o.field_selector = "metadata.name=a b";
  o.page_size = 2;
  o.watch_timeout = std::chrono::seconds(60);
  o.initial_backoff = std::chrono::milliseconds(10);
  o.max_backoff = std::chrono::milliseconds(40);
  return o;
}

TEST(ReflectorTest, PagedListThenWatchEventsBookmarksAnd410Relist) {
  std::atomic<int> watches{0};
  ScriptedApiServer server([&](const ScriptedApiServer::Request& r) {
    ScriptedApiServer::Reply reply;
    if (r.target.find("watch=1") == std::string::npos) {
      if (r.target.find("continue=tok%2F1") != std::string::npos) {
        reply.body = List({Obj("c", "5")}, "10");
      } else {
        reply.body = List({Obj("a", "3"), Obj("b", "4")}, "10", "tok/1");
      }
      return reply;
    }
    reply.stream = true;
    int n = watches++;
    if (n == 0) {
      reply.chunks = {Event("ADDED", Obj("d", "11")),
                      // One event split across two chunks.
                      Event("MODIFIED", Obj("a", "12")).substr(0, 20),
                      Event("MODIFIED", Obj("a", "12")).substr(20),
                      Event("DELETED", Obj("b", "13")) + Event("BOOKMARK", Obj("", "20"))};
    } else if (n == 1) {
      reply.status = 410;
      reply.stream = false;
      reply.body = R"({"kind":"Status","code":410,"reason":"Expired","message":"too old"})";
    } else {
      reply.chunks = {};
      reply.hold_open = true;
    }
    return reply;
  });
  RecordingHandler handler;
  Reflector reflector(ConfigFor(server), Options(), handler);
  reflector.Start();
  ASSERT_TRUE(reflector.WaitSynced(std::chrono::seconds(5)));
  ASSERT_TRUE(testing::WaitFor([&] { return watches.load() >= 3; }));
  ASSERT_TRUE(testing::WaitFor([&] { return reflector.stats().lists == 2; }));
  reflector.Stop();

  auto log = handler.log();
  std::vector<std::string> want = {"begin",    "item:a",   "item:b",   "item:c", "end",
                                   "upsert:d", "upsert:a", "delete:b", "begin",  "item:a",
                                   "item:b",   "item:c",   "end"};
  EXPECT_EQ(log, want);
  auto reqs = server.requests();
  ASSERT_GE(reqs.size(), 6u);
  EXPECT_EQ(reqs[0].target,
            "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Da%20b&limit=2");
  EXPECT_EQ(reqs[0].authorization, "Bearer secret-token");
  EXPECT_NE(reqs[1].target.find("continue=tok%2F1"), std::string::npos);
  // The first watch starts at the list's version; the second at the bookmark's.
  EXPECT_NE(reqs[2].target.find("watch=1&allowWatchBookmarks=true&timeoutSeconds="),
            std::string::npos)
      << reqs[2].target;
  EXPECT_NE(reqs[2].target.find("resourceVersion=10"), std::string::npos) << reqs[2].target;
  EXPECT_NE(reqs[3].target.find("resourceVersion=20"), std::string::npos) << reqs[3].target;
  auto stats = reflector.stats();
  EXPECT_EQ(stats.relists_gone, 1u);
  EXPECT_EQ(stats.events, 3u);
}

TEST(ReflectorTest, ErrorEventGoneRelistsAndTornLineRewatchesWithoutRelist) {
  std::atomic<int> watches{0};
  ScriptedApiServer server([&](const ScriptedApiServer::Request& r) {
    ScriptedApiServer::Reply reply;
    if (r.target.find("watch=1") == std::string::npos) {
      reply.body = List({Obj("a", "1")}, "7");
      return reply;
    }
    reply.stream = true;
    int n = watches++;
    if (n == 0) {
      // A torn event: the connection drops in the middle of a line.
      reply.chunks = {Event("ADDED", Obj("x", "8")), R"({"type":"ADDED","obj)"};
      reply.torn = true;
    } else if (n == 1) {
      reply.chunks = {Event("ERROR", R"({"kind":"Status","code":410,"reason":"Expired",)"
                                     R"json("message":"too old resource version: 8 (9)"})json")};
    } else {
      reply.hold_open = true;
    }
    return reply;
  });
  RecordingHandler handler;
  Reflector reflector(ConfigFor(server), Options(), handler);
  reflector.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return watches.load() >= 3; }));
  reflector.Stop();
  // Torn: re-watched from the last good version (8), no list in between; the ERROR 410: a list.
  auto reqs = server.requests();
  std::vector<std::string> kinds;
  for (const auto& r : reqs) {
    kinds.push_back(r.target.find("watch=1") != std::string::npos ? "watch" : "list");
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"list", "watch", "watch", "list", "watch"}));
  EXPECT_NE(reqs[2].target.find("resourceVersion=8"), std::string::npos) << reqs[2].target;
  EXPECT_TRUE(handler.Has("upsert:x"));
  EXPECT_EQ(reflector.stats().relists_gone, 1u);
}

TEST(ReflectorTest, ExpiredContinueTokenFallsBackToAFullList) {
  ScriptedApiServer server([&](const ScriptedApiServer::Request& r) {
    ScriptedApiServer::Reply reply;
    if (r.target.find("watch=1") != std::string::npos) {
      reply.stream = true;
      reply.hold_open = true;
    } else if (r.target.find("continue=") != std::string::npos) {
      reply.status = 410;
      reply.body = R"({"kind":"Status","code":410,"reason":"Expired"})";
    } else if (r.target.find("limit=") != std::string::npos) {
      reply.body = List({Obj("a", "1"), Obj("b", "2")}, "5", "expired-soon");
    } else {
      reply.body = List({Obj("a", "1"), Obj("b", "2"), Obj("c", "3")}, "6");
    }
    return reply;
  });
  RecordingHandler handler;
  Reflector reflector(ConfigFor(server), Options(), handler);
  reflector.Start();
  ASSERT_TRUE(reflector.WaitSynced(std::chrono::seconds(5)));
  reflector.Stop();
  EXPECT_EQ(handler.log(), (std::vector<std::string>{"begin", "item:a", "item:b", "begin", "item:a",
                                                     "item:b", "item:c", "end"}));
  // First page and the expired continue carry the page size; the fallback list does not.
  auto reqs = server.requests();
  ASSERT_GE(reqs.size(), 3u);
  EXPECT_NE(reqs[1].target.find("limit=2&continue=expired-soon"), std::string::npos);
  EXPECT_EQ(reqs[2].target, "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Da%20b");
}

TEST(ReflectorTest, ForbiddenListBacksOffAndRetriesWithTheErrorRecorded) {
  std::atomic<int> lists{0};
  ScriptedApiServer server([&](const ScriptedApiServer::Request& r) {
    ScriptedApiServer::Reply reply;
    if (r.target.find("watch=1") != std::string::npos) {
      reply.stream = true;
      reply.hold_open = true;
    } else if (lists++ < 2) {
      reply.status = 403;
      reply.body = R"({"kind":"Status","code":403,"reason":"Forbidden",)"
                   R"("message":"pods is forbidden: User \"u\" cannot list"})";
    } else {
      reply.body = List({}, "1");
    }
    return reply;
  });
  RecordingHandler handler;
  Reflector reflector(ConfigFor(server), Options(), handler);
  reflector.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return lists.load() >= 1; }));
  ASSERT_TRUE(reflector.WaitSynced(std::chrono::seconds(5)));
  EXPECT_EQ(lists.load(), 3);
  reflector.Stop();
  EXPECT_EQ(handler.log(), (std::vector<std::string>{"begin", "end"}));
}

TEST(ReflectorTest, ForbiddenErrorIsVisibleWhileFailing) {
  ScriptedApiServer server([&](const ScriptedApiServer::Request&) {
    ScriptedApiServer::Reply reply;
    reply.status = 403;
    reply.body = R"({"kind":"Status","code":403,"reason":"Forbidden","message":"nope"})";
    return reply;
  });
  RecordingHandler handler;
  Reflector reflector(ConfigFor(server), Options(), handler);
  reflector.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return !reflector.stats().last_error.empty(); }));
  EXPECT_NE(reflector.stats().last_error.find("HTTP 403 Forbidden: nope"), std::string::npos)
      << reflector.stats().last_error;
  EXPECT_FALSE(reflector.synced());
  reflector.Stop();
}

TEST(ReflectorTest, StopEndsAHeldWatchPromptly) {
  ScriptedApiServer server([&](const ScriptedApiServer::Request& r) {
    ScriptedApiServer::Reply reply;
    if (r.target.find("watch=1") == std::string::npos) {
      reply.body = List({}, "1");
    } else {
      reply.stream = true;
      reply.hold_open = true;
    }
    return reply;
  });
  RecordingHandler handler;
  Reflector reflector(ConfigFor(server), Options(), handler);
  reflector.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return server.Count("GET", "watch=1") == 1; }));
  // Stop() must end the held stream itself (the server never would).
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    reflector.Stop();
    stopped = true;
  });
  EXPECT_TRUE(testing::WaitFor([&] { return stopped.load(); }));
  stopper.join();
}

// Events must reach the handler as they arrive, while the server keeps the stream open (a
// reader that waits for its buffer to fill would sit on small events indefinitely).
TEST(ReflectorTest, EventsArriveWhileTheStreamStaysOpen) {
  ScriptedApiServer server([&](const ScriptedApiServer::Request& r) {
    ScriptedApiServer::Reply reply;
    if (r.target.find("watch=1") == std::string::npos) {
      reply.body = List({}, "1");
    } else {
      reply.stream = true;
      reply.chunks = {Event("ADDED", Obj("small", "2"))};
      reply.hold_open = true;
    }
    return reply;
  });
  RecordingHandler handler;
  Reflector reflector(ConfigFor(server), Options(), handler);
  reflector.Start();
  EXPECT_TRUE(testing::WaitFor([&] { return handler.Has("upsert:small"); }));
  EXPECT_EQ(server.Count("GET", "watch=1"), 1u);  // the same, still open, watch delivered it
  reflector.Stop();
}

// Watch failures that are not "expired": each retries the watch from the same version without
// a list (recorded as the last error); "resource version too large" lists again.
TEST(ReflectorTest, WatchFailuresRetryTheWatchAndTooLargeRelists) {
  std::atomic<int> watches{0};
  ScriptedApiServer server([&](const ScriptedApiServer::Request& r) {
    ScriptedApiServer::Reply reply;
    if (r.target.find("watch=1") == std::string::npos) {
      reply.body = List({}, "5");
      return reply;
    }
    int n = watches++;
    if (n == 0) {  // throttled
      reply.status = 429;
      reply.headers = "Retry-After: 1\r\n";
      reply.body = R"({"kind":"Status","code":429,"reason":"TooManyRequests","message":"slow"})";
    } else if (n == 1) {  // an ERROR event that is not 410
      reply.stream = true;
      reply.chunks = {Event("ERROR", R"({"kind":"Status","code":500,"message":"internal"})")};
    } else if (n == 2) {  // a stream that ends at once with nothing
      reply.stream = true;
    } else if (n == 3) {  // the server is behind the version we have
      reply.status = 504;
      reply.body = R"({"kind":"Status","code":504,"reason":"Timeout",)"
                   R"("message":"Too large resource version: 5, current: 4"})";
    } else {
      reply.stream = true;
      reply.hold_open = true;
    }
    return reply;
  });
  RecordingHandler handler;
  Reflector reflector(ConfigFor(server), Options(), handler);
  reflector.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return watches.load() >= 5; }));
  reflector.Stop();
  std::vector<std::string> kinds;
  for (const auto& r : server.requests()) {
    kinds.push_back(r.target.find("watch=1") != std::string::npos ? "watch" : "list");
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"list", "watch", "watch", "watch", "watch", "list",
                                             "watch"}));
  for (size_t i = 1; i <= 4; ++i) {
    EXPECT_NE(server.requests()[i].target.find("resourceVersion=5"), std::string::npos);
  }
}

TEST(ReflectorTest, ShortEmptyWatchesBackOff) {
  ScriptedApiServer server([&](const ScriptedApiServer::Request& r) {
    ScriptedApiServer::Reply reply;
    if (r.target.find("watch=1") == std::string::npos) {
      reply.body = List({}, "5");
    } else {
      reply.stream = true;  // ends at once, nothing delivered
    }
    return reply;
  });
  RecordingHandler handler;
  Reflector reflector(ConfigFor(server), Options(), handler);
  reflector.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return server.Count("GET", "watch=1") >= 3; }));
  EXPECT_NE(reflector.stats().last_error.find("ended at once"), std::string::npos)
      << reflector.stats().last_error;
  reflector.Stop();
}

TEST(WatchDecoderTest, SplitsLinesAndRejectsGarbage) {
  WatchDecoder d;
  std::vector<std::string> seen;
  auto on = [&](const WatchDecoder::Event& e) {
    std::string_view name;
    if (e.object["metadata"]["name"].get(name) != simdjson::SUCCESS) name = {};
    seen.push_back(StrCat(static_cast<int>(e.type), ":", name));
    return absl::OkStatus();
  };
  std::string two = Event("ADDED", Obj("a", "1")) + "\n" + Event("DELETED", Obj("b", "2"));
  for (char c : two) ASSERT_TRUE(d.Feed(std::string_view(&c, 1), on).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"0:a", "2:b"}));
  EXPECT_EQ(d.pending(), 0u);

  WatchDecoder bad;
  EXPECT_EQ(bad.Feed("{\"type\":\"NOPE\",\"object\":{}}\n", on).message(),
            "watch event: type: unknown \"NOPE\"");
  WatchDecoder not_json;
  EXPECT_TRUE(absl::IsInvalidArgument(not_json.Feed("{{{\n", on)));
  WatchDecoder no_object;
  EXPECT_EQ(no_object.Feed("{\"type\":\"ADDED\",\"object\":3}\n", on).message(),
            "watch event: object: must be an object");
}

}  // namespace
}  // namespace epp::k8s
