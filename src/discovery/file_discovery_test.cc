#include "discovery/file_discovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/wait.h"

namespace epp::discovery {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Resolves names from a table; anything else fails like getaddrinfo would.
Resolver FakeResolver(std::map<std::string, std::string> table = {{"model.local", "10.9.9.9"},
                                                                  {"v6.local", "fd00::9"}}) {
  return [table](const std::string& host) -> absl::StatusOr<std::string> {
    auto it = table.find(host);
    if (it == table.end()) {
      return absl::UnavailableError("cannot resolve \"" + host + "\": unknown host");
    }
    return it->second;
  };
}

// "ns/name=host_port" for compact comparisons.
std::vector<std::string> Describe(const std::vector<datastore::Endpoint>& endpoints) {
  std::vector<std::string> out;
  for (const auto& e : endpoints) out.push_back(e.Key() + "=" + e.host_port);
  return out;
}

std::vector<std::string> Describe(const datastore::Snapshot& snap) {
  std::vector<std::string> out;
  for (const auto& e : snap.endpoints) out.push_back(e->Key() + "=" + e->host_port);
  return out;
}

TEST(ParseEndpointsFileTest, ValidEntries) {
  auto parsed = ParseEndpointsFile(R"(
endpoints:
- name: pod-a
  namespace: team
  address: 10.0.0.1
  port: "8000"
  labels: {role: decode, zone: a}
- name: pod-b
  address: 10.0.0.2
  port: 8001
- name: pod-v6
  address: "::1"
  port: 9000
- name: pod-v6-bracketed
  address: "[::1]"
  port: "9001"
- name: pod-dns
  address: model.local
  port: 80
- name: pod-a
  namespace: other
  address: 10.0.0.3
  port: 1
- name: pod-max-port
  address: 10.0.0.4
  port: 65535
)",
                                   FakeResolver());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(parsed->skipped, IsEmpty());
  EXPECT_THAT(Describe(parsed->endpoints),
              ElementsAre("team/pod-a=10.0.0.1:8000", "default/pod-b=10.0.0.2:8001",
                          "default/pod-v6=[::1]:9000", "default/pod-v6-bracketed=[::1]:9001",
                          "default/pod-dns=10.9.9.9:80", "other/pod-a=10.0.0.3:1",
                          "default/pod-max-port=10.0.0.4:65535"));
  const auto& a = parsed->endpoints[0];
  EXPECT_EQ(a.name, "pod-a");
  EXPECT_EQ(a.ns, "team");
  EXPECT_EQ(a.address, "10.0.0.1");
  EXPECT_EQ(a.port, 8000);
  EXPECT_EQ(a.labels, (std::map<std::string, std::string>{{"role", "decode"}, {"zone", "a"}}));
  EXPECT_EQ(parsed->endpoints[3].address, "::1");
  EXPECT_EQ(parsed->endpoints[4].address, "10.9.9.9");
}

TEST(ParseEndpointsFileTest, ResolverCalledOnlyForHostNames) {
  std::vector<std::string> asked;
  Resolver recording = [&asked](const std::string& host) -> absl::StatusOr<std::string> {
    asked.push_back(host);
    return std::string("10.7.7.7");
  };
  auto parsed = ParseEndpointsFile(R"(
endpoints:
- {name: a, address: 10.0.0.1, port: 1}
- {name: b, address: "::1", port: 1}
- {name: c, address: my-host, port: 1}
)",
                                   recording);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_THAT(asked, ElementsAre("my-host"));
  EXPECT_THAT(Describe(parsed->endpoints),
              ElementsAre("default/a=10.0.0.1:1", "default/b=[::1]:1", "default/c=10.7.7.7:1"));
}

TEST(ParseEndpointsFileTest, BadEntriesAreSkippedAndTheRestUsed) {
  struct Case {
    const char* name;
    std::string bad_entry;          // YAML flow map of the bad entry (index 1)
    std::vector<std::string> want;  // substrings of the skip message
  } cases[] = {
      {"missing name", "{address: 10.0.0.2, port: 1}", {"endpoints[1]", "name is required"}},
      {"empty name", "{name: '', address: 10.0.0.2, port: 1}", {"endpoints[1]", "name"}},
      {"missing address", "{name: bad, port: 1}", {"endpoints[1] (bad)", "address is required"}},
      {"missing port", "{name: bad, address: 10.0.0.2}", {"endpoints[1] (bad)", "port"}},
      {"port 0", "{name: bad, address: 10.0.0.2, port: 0}", {"endpoints[1] (bad)", "\"0\""}},
      {"port 70000",
       "{name: bad, address: 10.0.0.2, port: 70000}",
       {"endpoints[1] (bad)", "\"70000\""}},
      {"port x", "{name: bad, address: 10.0.0.2, port: x}", {"endpoints[1] (bad)", "\"x\""}},
      {"port negative",
       "{name: bad, address: 10.0.0.2, port: '-5'}",
       {"endpoints[1] (bad)", "port"}},
      {"port list", "{name: bad, address: 10.0.0.2, port: [1]}", {"endpoints[1] (bad)", "port"}},
      {"unknown field",
       "{name: bad, address: 10.0.0.2, port: 1, weight: 3}",
       {"endpoints[1]", "unknown field \"weight\""}},
      {"duplicate name",
       "{name: good-a, address: 10.0.0.2, port: 2}",
       {"endpoints[1] (good-a)", "duplicate", "default/good-a"}},
      {"labels not a map",
       "{name: bad, address: 10.0.0.2, port: 1, labels: [a, b]}",
       {"endpoints[1] (bad)", "labels"}},
      {"labels with non-scalar value",
       "{name: bad, address: 10.0.0.2, port: 1, labels: {a: [1]}}",
       {"endpoints[1] (bad)", "labels"}},
      {"resolver failure",
       "{name: bad, address: nowhere.invalid, port: 1}",
       {"endpoints[1] (bad)", "nowhere.invalid"}},
      {"entry not a map", "just-a-string", {"endpoints[1]", "must be a map"}},
      {"namespace not a string",
       "{name: bad, namespace: [x], address: 10.0.0.2, port: 1}",
       {"endpoints[1] (bad)", "namespace"}},
  };
  for (const auto& c : cases) {
    std::string text = "endpoints:\n- {name: good-a, address: 10.0.0.1, port: 8000}\n- " +
                       c.bad_entry + "\n- {name: good-b, address: 10.0.0.3, port: \"8002\"}\n";
    auto parsed = ParseEndpointsFile(text, FakeResolver());
    ASSERT_TRUE(parsed.ok()) << c.name << ": " << parsed.status();
    EXPECT_THAT(Describe(parsed->endpoints),
                ElementsAre("default/good-a=10.0.0.1:8000", "default/good-b=10.0.0.3:8002"))
        << c.name;
    ASSERT_EQ(parsed->skipped.size(), 1u) << c.name;
    for (const auto& w : c.want) EXPECT_THAT(parsed->skipped[0], HasSubstr(w)) << c.name;
  }
}

TEST(ParseEndpointsFileTest, DocumentErrors) {
  struct Case {
    const char* name;
    std::string text;
    const char* want;
  } cases[] = {
      {"not YAML", "endpoints: [unclosed", "not valid YAML"},
      {"no endpoints key", "pods: []\n", "\"endpoints\""},
      {"empty document", "", "\"endpoints\""},
      {"root is a list", "- name: a\n", "\"endpoints\""},
      {"endpoints not a list", "endpoints: {name: a}\n", "must be a list"},
      {"over 1 MiB", "endpoints: []\n#" + std::string(kMaxEndpointsFileBytes, 'x'), "larger"},
  };
  for (const auto& c : cases) {
    auto parsed = ParseEndpointsFile(c.text, FakeResolver());
    ASSERT_FALSE(parsed.ok()) << c.name;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.want)) << c.name;
  }
}

TEST(ParseEndpointsFileTest, EmptyListAndNullListAreEmpty) {
  for (const char* text : {"endpoints: []\n", "endpoints:\n"}) {
    auto parsed = ParseEndpointsFile(text, FakeResolver());
    ASSERT_TRUE(parsed.ok()) << text << parsed.status();
    EXPECT_THAT(parsed->endpoints, IsEmpty());
    EXPECT_THAT(parsed->skipped, IsEmpty());
  }
}

TEST(ParseEndpointsFileTest, ExactlyOneMiBIsAccepted) {
  std::string text = "endpoints: []\n#";
  text.append(kMaxEndpointsFileBytes - text.size(), 'x');
  ASSERT_EQ(text.size(), kMaxEndpointsFileBytes);
  EXPECT_TRUE(ParseEndpointsFile(text, FakeResolver()).ok());
}

TEST(FileDiscoveryCreateTest, Parameters) {
  auto ok =
      FileDiscovery::Create("fd", YAML::Load("{path: /tmp/endpoints.yaml, watchFile: false}"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->Type(), "file-discovery");
  EXPECT_EQ((*ok)->Name(), "fd");

  auto missing = FileDiscovery::Create("fd", YAML::Node());
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("path"));

  auto unknown = FileDiscovery::Create("fd", YAML::Load("{path: /x, watch: true}"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("\"watch\""));

  auto bad_bool = FileDiscovery::Create("fd", YAML::Load("{path: /x, watchFile: often}"));
  ASSERT_FALSE(bad_bool.ok());
  EXPECT_THAT(bad_bool.status().message(), HasSubstr("watchFile"));
}

using ::epp::testing::WaitFor;

class FileDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/epp-file-discovery-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/endpoints.yaml";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Rewrites `path` in place (same inode).
  static void WriteInPlace(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    ASSERT_TRUE(out.good()) << path;
  }

  static std::string Endpoints(const std::vector<std::pair<std::string, std::string>>& entries) {
    std::string text = "endpoints:\n";
    for (const auto& [name, addr] : entries) {
      text += "- name: " + name + "\n  address: \"" + addr + "\"\n  port: 8000\n";
    }
    return text;
  }

  bool WaitForEndpoints(const datastore::Datastore& ds, const std::vector<std::string>& want) {
    return WaitFor([&] { return Describe(*ds.GetSnapshot()) == want; });
  }

  std::string dir_;
  std::string path_;
};

TEST_F(FileDiscoveryTest, StartLoadsAndSetsPoolReady) {
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}, {"b", "model.local"}}));
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/false, FakeResolver());
  ASSERT_TRUE(fd.Start(ds).ok());
  auto snap = ds.GetSnapshot();
  EXPECT_TRUE(snap->pool_ready);
  EXPECT_THAT(Describe(*snap), ElementsAre("default/a=10.0.0.1:8000", "default/b=10.9.9.9:8000"));
  fd.Stop();
}

TEST_F(FileDiscoveryTest, StartOnMissingFileFails) {
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/true, FakeResolver());
  absl::Status s = fd.Start(ds);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr(path_));
  EXPECT_FALSE(ds.GetSnapshot()->pool_ready);
  fd.Stop();  // nothing started; must not hang
}

TEST_F(FileDiscoveryTest, StartTwiceIsRejected) {
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}}));
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/true, FakeResolver());
  ASSERT_TRUE(fd.Start(ds).ok());
  EXPECT_EQ(fd.Start(ds).code(), absl::StatusCode::kFailedPrecondition);
  fd.Stop();
}

TEST_F(FileDiscoveryTest, StartOnInvalidFileFails) {
  WriteInPlace(path_, "pods: []\n");
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/false, FakeResolver());
  absl::Status s = fd.Start(ds);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(path_));
  EXPECT_FALSE(ds.GetSnapshot()->pool_ready);
}

TEST_F(FileDiscoveryTest, BrokenReloadKeepsPreviousEndpoints) {
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}}));
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/false, FakeResolver());
  ASSERT_TRUE(fd.Start(ds).ok());
  uint64_t version = ds.GetSnapshot()->version;

  WriteInPlace(path_, "endpoints: [unclosed");
  EXPECT_FALSE(fd.Reload().ok());
  EXPECT_THAT(Describe(*ds.GetSnapshot()), ElementsAre("default/a=10.0.0.1:8000"));
  EXPECT_EQ(ds.GetSnapshot()->version, version);

  ASSERT_EQ(unlink(path_.c_str()), 0);
  EXPECT_FALSE(fd.Reload().ok());
  EXPECT_THAT(Describe(*ds.GetSnapshot()), ElementsAre("default/a=10.0.0.1:8000"));

  WriteInPlace(path_, Endpoints({{"b", "10.0.0.2"}}));
  ASSERT_TRUE(fd.Reload().ok());
  EXPECT_THAT(Describe(*ds.GetSnapshot()), ElementsAre("default/b=10.0.0.2:8000"));
  EXPECT_TRUE(ds.GetSnapshot()->pool_ready);
}

TEST_F(FileDiscoveryTest, UnchangedReloadPublishesNothing) {
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}}));
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/false, FakeResolver());
  ASSERT_TRUE(fd.Start(ds).ok());
  uint64_t version = ds.GetSnapshot()->version;
  ASSERT_TRUE(fd.Reload().ok());
  EXPECT_EQ(ds.GetSnapshot()->version, version);
}

// The watch exists before Start() returns: a change made right after it is seen through inotify
// even when the fallback poll would take ten minutes.
TEST_F(FileDiscoveryTest, ChangeRightAfterStartIsSeenWithoutThePollFallback) {
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}}));
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/true, FakeResolver(), /*poll_fallback_ms=*/600000);
  ASSERT_TRUE(fd.Start(ds).ok());
  WriteInPlace(path_, Endpoints({{"b", "10.0.0.2"}}));
  EXPECT_TRUE(WaitForEndpoints(ds, {"default/b=10.0.0.2:8000"}))
      << ::testing::PrintToString(Describe(*ds.GetSnapshot()));
  fd.Stop();
}

TEST_F(FileDiscoveryTest, WatchPicksUpInPlaceRewrite) {
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}}));
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/true, FakeResolver());
  ASSERT_TRUE(fd.Start(ds).ok());
  EXPECT_THAT(Describe(*ds.GetSnapshot()), ElementsAre("default/a=10.0.0.1:8000"));

  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}, {"b", "10.0.0.2"}}));
  EXPECT_TRUE(WaitForEndpoints(ds, {"default/a=10.0.0.1:8000", "default/b=10.0.0.2:8000"}))
      << ::testing::PrintToString(Describe(*ds.GetSnapshot()));

  // Removed entries disappear.
  WriteInPlace(path_, Endpoints({{"b", "10.0.0.2"}}));
  EXPECT_TRUE(WaitForEndpoints(ds, {"default/b=10.0.0.2:8000"}))
      << ::testing::PrintToString(Describe(*ds.GetSnapshot()));
  fd.Stop();
}

TEST_F(FileDiscoveryTest, WatchPicksUpAtomicRename) {
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}}));
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/true, FakeResolver());
  ASSERT_TRUE(fd.Start(ds).ok());

  std::string tmp = dir_ + "/.endpoints.yaml.tmp";
  WriteInPlace(tmp, Endpoints({{"c", "10.0.0.3"}}));
  ASSERT_EQ(rename(tmp.c_str(), path_.c_str()), 0);
  EXPECT_TRUE(WaitForEndpoints(ds, {"default/c=10.0.0.3:8000"}))
      << ::testing::PrintToString(Describe(*ds.GetSnapshot()));

  // A second replacement works too (the watch is on the directory, not the old inode).
  WriteInPlace(tmp, Endpoints({{"d", "::1"}}));
  ASSERT_EQ(rename(tmp.c_str(), path_.c_str()), 0);
  EXPECT_TRUE(WaitForEndpoints(ds, {"default/d=[::1]:8000"}))
      << ::testing::PrintToString(Describe(*ds.GetSnapshot()));
  fd.Stop();
}

TEST_F(FileDiscoveryTest, WatchPicksUpSymlinkSwap) {
  // The Kubernetes ConfigMap layout: the watched path is a symlink that is atomically swapped.
  std::string v1 = dir_ + "/v1.yaml";
  std::string v2 = dir_ + "/v2.yaml";
  WriteInPlace(v1, Endpoints({{"a", "10.0.0.1"}}));
  WriteInPlace(v2, Endpoints({{"z", "10.0.0.26"}}));
  ASSERT_EQ(symlink(v1.c_str(), path_.c_str()), 0);

  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/true, FakeResolver());
  ASSERT_TRUE(fd.Start(ds).ok());
  EXPECT_THAT(Describe(*ds.GetSnapshot()), ElementsAre("default/a=10.0.0.1:8000"));

  std::string tmp_link = dir_ + "/.tmp-link";
  ASSERT_EQ(symlink(v2.c_str(), tmp_link.c_str()), 0);
  ASSERT_EQ(rename(tmp_link.c_str(), path_.c_str()), 0);
  EXPECT_TRUE(WaitForEndpoints(ds, {"default/z=10.0.0.26:8000"}))
      << ::testing::PrintToString(Describe(*ds.GetSnapshot()));
  fd.Stop();
}

TEST_F(FileDiscoveryTest, WatchKeepsPreviousOnBrokenRewriteThenRecovers) {
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}}));
  datastore::Datastore ds;
  FileDiscovery fd("fd", path_, /*watch=*/true, FakeResolver());
  ASSERT_TRUE(fd.Start(ds).ok());

  WriteInPlace(path_, "endpoints: [unclosed");
  // A broken file never empties the pool; it only becomes valid again with a good rewrite.
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}, {"e", "10.0.0.5"}}));
  EXPECT_TRUE(WaitForEndpoints(ds, {"default/a=10.0.0.1:8000", "default/e=10.0.0.5:8000"}))
      << ::testing::PrintToString(Describe(*ds.GetSnapshot()));
  EXPECT_TRUE(ds.GetSnapshot()->pool_ready);
  fd.Stop();
}

TEST_F(FileDiscoveryTest, StopJoinsCleanlyAndIsIdempotent) {
  WriteInPlace(path_, Endpoints({{"a", "10.0.0.1"}}));
  datastore::Datastore ds;
  {
    FileDiscovery fd("fd", path_, /*watch=*/true, FakeResolver());
    ASSERT_TRUE(fd.Start(ds).ok());
    fd.Stop();
    fd.Stop();
  }  // the destructor stops again
  {
    // Destroyed without an explicit Stop(): the destructor joins the watcher.
    FileDiscovery fd("fd2", path_, /*watch=*/true, FakeResolver());
    ASSERT_TRUE(fd.Start(ds).ok());
  }
  EXPECT_THAT(Describe(*ds.GetSnapshot()), ElementsAre("default/a=10.0.0.1:8000"));
}

// --- modelRewrites ----------------------------------------------------------------------------

// "name: rule0 | rule1", each rule "m1,m2 -> t1:w1,t2:w2" ("*" for a catch-all).
std::vector<std::string> Describe(const std::vector<datastore::ModelRewrite>& rewrites) {
  std::vector<std::string> out;
  for (const auto& rw : rewrites) {
    std::string s = rw.name + ":";
    for (size_t r = 0; r < rw.rules.size(); ++r) {
      const auto& rule = rw.rules[r];
      s += r == 0 ? " " : " | ";
      s += rule.matches.empty() ? "*" : "";
      for (size_t m = 0; m < rule.matches.size(); ++m) s += (m ? "," : "") + rule.matches[m];
      s += " ->";
      for (size_t t = 0; t < rule.targets.size(); ++t) {
        s += (t ? "," : " ") + rule.targets[t].model + ":" + std::to_string(rule.targets[t].weight);
      }
    }
    out.push_back(s);
  }
  return out;
}

constexpr char kOneEndpoint[] = "endpoints:\n- {name: a, address: 10.0.0.1, port: 8000}\n";

TEST(ParseModelRewritesTest, ValidSection) {
  auto parsed = ParseEndpointsFile(std::string(kOneEndpoint) + R"(
modelRewrites:
- name: alias
  spec:
    poolRef: {group: inference.networking.k8s.io, name: my-pool}
    rules:
    - matches:
      - model: {type: Exact, value: alias}
      - model: {value: alias-2}
      targets:
      - modelRewrite: llama
# A Kubernetes manifest pasted as it is.
- apiVersion: inference.networking.x-k8s.io/v1alpha2
  kind: InferenceModelRewrite
  metadata: {name: canary, namespace: default, creationTimestamp: "2025-01-01T00:00:00Z"}
  spec:
    rules:
    - matches: [{model: {value: llama}}]
      targets:
      - {modelRewrite: llama-v1, weight: 90}
      - {modelRewrite: llama-v2, weight: "10"}
    - targets: [{modelRewrite: fallback}]
  status: {conditions: []}
- name: catch-all
  spec:
    rules:
    - matches: []
      targets: [{modelRewrite: a, weight: 0}, {modelRewrite: b}]
)",
                                   FakeResolver());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(parsed->model_rewrites_status.ok()) << parsed->model_rewrites_status;
  EXPECT_THAT(Describe(parsed->model_rewrites),
              ElementsAre("alias: alias,alias-2 -> llama:0",
                          "canary: llama -> llama-v1:90,llama-v2:10 | * -> fallback:0",
                          "catch-all: * -> a:0,b:0"));
  EXPECT_THAT(Describe(parsed->endpoints), ElementsAre("default/a=10.0.0.1:8000"));
}

TEST(ParseModelRewritesTest, AbsentOrNullSectionHasNoRules) {
  for (std::string extra : {"", "modelRewrites:\n", "modelRewrites: []\n"}) {
    auto parsed = ParseEndpointsFile(kOneEndpoint + extra, FakeResolver());
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_TRUE(parsed->model_rewrites_status.ok()) << extra;
    EXPECT_THAT(parsed->model_rewrites, IsEmpty()) << extra;
  }
}

// Every error names the object (index and name), the rule and the field; the endpoints are
// parsed regardless.
TEST(ParseModelRewritesTest, ErrorsNameObjectRuleAndField) {
  constexpr char kGood[] =
      "- {name: good, spec: {rules: [{matches: [{model: {value: x}}], targets: "
      "[{modelRewrite: y}]}]}}\n";
  struct Case {
    std::string section;  // after "modelRewrites:\n" and the good object
    std::string want;
  };
  const std::vector<Case> cases = {
      {"- {spec: {rules: [{targets: [{modelRewrite: y}]}]}}",
       "modelRewrites[1]: name: is required (or metadata.name)"},
      {"- {name: good, spec: {rules: [{targets: [{modelRewrite: y}]}]}}",
       "modelRewrites[1] (good): name: \"good\" is used by an earlier object"},
      {"- {name: a, metadata: {name: b}, spec: {rules: [{targets: [{modelRewrite: y}]}]}}",
       "modelRewrites[1]: metadata.name: \"b\" differs from name \"a\""},
      {"- {name: a, kind: InferencePool, spec: {rules: [{targets: [{modelRewrite: y}]}]}}",
       "modelRewrites[1] (a): kind: must be InferenceModelRewrite"},
      {"- {name: a}", "modelRewrites[1] (a): spec: is required"},
      {"- {name: a, spec: {}}", "modelRewrites[1] (a): spec.rules: at least one rule is required"},
      {"- {name: a, spec: {rules: {x: 1}}}", "modelRewrites[1] (a): spec.rules: must be a list"},
      {"- {name: a, spec: {rule: []}}", "modelRewrites[1] (a): spec.rule: unknown field"},
      {"- {name: a, weight: 1, spec: {rules: []}}", "modelRewrites[1]: weight: unknown field"},
      {"- {name: a, spec: {rules: [{targets: [{modelRewrite: y}]}, {targets: []}]}}",
       "modelRewrites[1] (a): spec.rules[1].targets: at least one is required"},
      {"- {name: a, spec: {rules: [{matches: [{model: {type: Prefix, value: x}}], targets: "
       "[{modelRewrite: y}]}]}}",
       "modelRewrites[1] (a): spec.rules[0].matches[0].model.type: \"Prefix\" is not supported "
       "(only Exact)"},
      {"- {name: a, spec: {rules: [{matches: [{model: {value: ''}}], targets: "
       "[{modelRewrite: y}]}]}}",
       "modelRewrites[1] (a): spec.rules[0].matches[0].model.value: a non-empty string is "
       "required"},
      {"- {name: a, spec: {rules: [{matches: [{name: x}], targets: [{modelRewrite: y}]}]}}",
       "modelRewrites[1] (a): spec.rules[0].matches[0].name: unknown field"},
      {"- {name: a, spec: {rules: [{matches: [{}], targets: [{modelRewrite: y}]}]}}",
       "modelRewrites[1] (a): spec.rules[0].matches[0].model: must be a map"},
      {"- {name: a, spec: {rules: [{targets: [{weight: 3}]}]}}",
       "modelRewrites[1] (a): spec.rules[0].targets[0].modelRewrite: a non-empty string is "
       "required"},
      {"- {name: a, spec: {rules: [{targets: [{modelRewrite: y, weight: 1000001}]}]}}",
       "modelRewrites[1] (a): spec.rules[0].targets[0].weight: \"1000001\" is not an integer in "
       "1..1000000"},
      {"- {name: a, spec: {rules: [{targets: [{modelRewrite: y, weight: -1}]}]}}",
       "spec.rules[0].targets[0].weight: \"-1\" is not an integer"},
      {"- {name: a, spec: {rules: [{targets: [{modelRewrite: y, weight: 1.5}]}]}}",
       "spec.rules[0].targets[0].weight: \"1.5\" is not an integer"},
      {"- {name: a, spec: {rules: [{targets: [{modelRewrite: y, weight: 5}, {modelRewrite: z}]}]}}",
       "modelRewrites[1] (a): spec.rules[0].targets: weight is set on 1 of 2 targets"},
      {"- just-a-string", "modelRewrites[1]: must be a map"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseEndpointsFile(
        std::string(kOneEndpoint) + "modelRewrites:\n" + kGood + c.section + "\n", FakeResolver());
    ASSERT_TRUE(parsed.ok()) << c.section << ": " << parsed.status();
    EXPECT_THAT(Describe(parsed->endpoints), ElementsAre("default/a=10.0.0.1:8000")) << c.section;
    EXPECT_EQ(parsed->model_rewrites_status.code(), absl::StatusCode::kInvalidArgument)
        << c.section;
    EXPECT_THAT(parsed->model_rewrites_status.message(), HasSubstr(c.want)) << c.section;
    EXPECT_THAT(parsed->model_rewrites, IsEmpty()) << "all or nothing: " << c.section;
  }
  auto not_list =
      ParseEndpointsFile(std::string(kOneEndpoint) + "modelRewrites: {a: 1}\n", FakeResolver());
  ASSERT_TRUE(not_list.ok());
  EXPECT_EQ(not_list->model_rewrites_status.message(), "modelRewrites: must be a list");
}

class FileDiscoveryRewriteTest : public FileDiscoveryTest {
 protected:
  static std::string WithRewrites(const std::string& rewrites) {
    return std::string(kOneEndpoint) + "modelRewrites:\n" + rewrites;
  }
  static std::string Alias(const std::string& from, const std::string& to) {
    return "- {name: " + from + ", spec: {rules: [{matches: [{model: {value: " + from +
           "}}], targets: [{modelRewrite: " + to + "}]}]}}\n";
  }
  // The target the store's rules give `model` ("" when none applies).
  std::string Target(const std::string& model) {
    auto set = store_.Get();  // the match points into the set: hold it while reading
    auto m = set->Find(model);
    return m ? m.rule->targets[0].model : "";
  }
  datastore::Datastore ds_;
  datastore::ModelRewriteStore store_;
};

TEST_F(FileDiscoveryRewriteTest, StartLoadsRulesAndReloadReplacesThem) {
  WriteInPlace(path_, WithRewrites(Alias("alias", "llama")));
  FileDiscovery fd("fd", path_, /*watch=*/false, FakeResolver());
  ASSERT_TRUE(fd.Start(ds_, &store_).ok());
  EXPECT_EQ(Target("alias"), "llama");

  WriteInPlace(path_, WithRewrites(Alias("other", "llama-2")));
  ASSERT_TRUE(fd.Reload().ok());
  EXPECT_EQ(Target("alias"), "");
  EXPECT_EQ(Target("other"), "llama-2");

  // Removing the section removes the rules.
  WriteInPlace(path_, kOneEndpoint);
  ASSERT_TRUE(fd.Reload().ok());
  EXPECT_TRUE(store_.Get()->empty());
}

TEST_F(FileDiscoveryRewriteTest, InvalidSectionKeepsPreviousRulesButAppliesEndpoints) {
  WriteInPlace(path_, WithRewrites(Alias("alias", "llama")));
  FileDiscovery fd("fd", path_, /*watch=*/false, FakeResolver());
  ASSERT_TRUE(fd.Start(ds_, &store_).ok());
  auto kept = store_.Get();

  WriteInPlace(path_,
               "endpoints:\n- {name: b, address: 10.0.0.2, port: 8000}\nmodelRewrites:\n" +
                   Alias("alias", "llama-2") +
                   "- {name: bad, spec: {rules: [{targets: [{modelRewrite: x, weight: 0.5}]}]}}\n");
  ASSERT_TRUE(fd.Reload().ok()) << "a bad rewrite section is not a discovery error";
  EXPECT_THAT(Describe(*ds_.GetSnapshot()), ElementsAre("default/b=10.0.0.2:8000"));
  EXPECT_EQ(store_.Get(), kept);
  EXPECT_EQ(Target("alias"), "llama");

  // Fixed: applied.
  WriteInPlace(path_, WithRewrites(Alias("alias", "llama-2")));
  ASSERT_TRUE(fd.Reload().ok());
  EXPECT_EQ(Target("alias"), "llama-2");
}

TEST_F(FileDiscoveryRewriteTest, InvalidSectionAtStartStartsWithoutRules) {
  WriteInPlace(path_, WithRewrites("- {name: bad}\n"));
  FileDiscovery fd("fd", path_, /*watch=*/false, FakeResolver());
  ASSERT_TRUE(fd.Start(ds_, &store_).ok());
  EXPECT_TRUE(ds_.GetSnapshot()->pool_ready);
  EXPECT_THAT(Describe(*ds_.GetSnapshot()), ElementsAre("default/a=10.0.0.1:8000"));
  EXPECT_TRUE(store_.Get()->empty());
}

TEST_F(FileDiscoveryRewriteTest, WithoutAStoreRulesAreIgnored) {
  WriteInPlace(path_, WithRewrites(Alias("alias", "llama")));
  FileDiscovery fd("fd", path_, /*watch=*/false, FakeResolver());
  ASSERT_TRUE(fd.Start(ds_).ok());
  EXPECT_THAT(Describe(*ds_.GetSnapshot()), ElementsAre("default/a=10.0.0.1:8000"));
}

// Live reload: the watcher applies rule changes (in place and by rename) without a restart.
TEST_F(FileDiscoveryRewriteTest, WatchAppliesRuleChanges) {
  WriteInPlace(path_, kOneEndpoint);
  FileDiscovery fd("fd", path_, /*watch=*/true, FakeResolver(), /*poll_fallback_ms=*/600000);
  ASSERT_TRUE(fd.Start(ds_, &store_).ok());
  EXPECT_TRUE(store_.Get()->empty());

  WriteInPlace(path_, WithRewrites(Alias("alias", "llama")));
  EXPECT_TRUE(WaitFor([&] { return Target("alias") == "llama"; }));

  std::string tmp = dir_ + "/.endpoints.yaml.tmp";
  WriteInPlace(tmp, WithRewrites(Alias("alias", "llama-v2") + Alias("x", "y")));
  ASSERT_EQ(rename(tmp.c_str(), path_.c_str()), 0);
  EXPECT_TRUE(WaitFor([&] { return Target("alias") == "llama-v2" && Target("x") == "y"; }));

  // A broken section is ignored; the next good one applies.
  WriteInPlace(path_, WithRewrites("- {name: broken, spec: {rules: []}}\n"));
  WriteInPlace(path_, WithRewrites(Alias("alias", "llama-v3")));
  EXPECT_TRUE(WaitFor([&] { return Target("alias") == "llama-v3"; }));
  EXPECT_EQ(Target("x"), "");
  fd.Stop();
}

}  // namespace
}  // namespace epp::discovery
