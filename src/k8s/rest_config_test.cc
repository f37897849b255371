#include "k8s/rest_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/escaping.h"
#include "common/strings.h"

namespace epp::k8s {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/k8s_config_testXXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ + "/" + name) << text;
  }

 private:
  std::string path_;
};

std::string B64(std::string_view s) { return absl::Base64Escape(AV(s)); }

TEST(KubeconfigTest, CurrentContextWithTokenAndInlineCa) {
  std::string text = StrCat(R"(
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: other
  cluster: {server: https://10.0.0.9:1}
- name: c
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: )",
                            B64("CA-PEM"), R"(
contexts:
- name: test
  context: {cluster: c, user: u, namespace: ns1}
users:
- name: u
  user: {token: abc}
)");
  auto c = ParseKubeconfig(text, "/nowhere");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->scheme, "https");
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->port, 6443);
  EXPECT_EQ(c->ca_pem, "CA-PEM");
  EXPECT_EQ(c->token->Token(), "abc");
  EXPECT_EQ(c->namespace_, "ns1");
  EXPECT_EQ(c->HostPort(), "127.0.0.1:6443");
}

TEST(KubeconfigTest, NamedContextFilesRelativeToTheKubeconfig) {
  TempDir dir;
  dir.Write("ca.crt", "FILE-CA");
  dir.Write("tok", "  file-token\n");
  dir.Write("kubeconfig", R"(
current-context: a
clusters:
- name: c
  cluster: {server: "http://[::1]:8080", certificate-authority: ca.crt}
contexts:
- {name: a, context: {cluster: nope, user: u}}
- {name: b, context: {cluster: c, user: u}}
users:
- {name: u, user: {tokenFile: tok}}
)");
  auto c = LoadKubeconfig(dir.path() + "/kubeconfig", "b");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->scheme, "http");
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 8080);
  EXPECT_EQ(c->HostPort(), "[::1]:8080");
  EXPECT_EQ(c->ca_pem, "FILE-CA");
  EXPECT_EQ(c->token->Token(), "file-token");
  // The current context names a missing cluster: the error names it.
  auto bad = LoadKubeconfig(dir.path() + "/kubeconfig");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cluster \"nope\""), std::string::npos) << bad.status();
}

TEST(KubeconfigTest, ErrorsNameTheField) {
  struct Case {
    std::string text;
    std::string want;
  };
  std::vector<Case> cases = {
      {"a: [", "not YAML"},
      {"clusters: []", "current-context is not set"},
      {"current-context: x", "context \"x\" not found"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, "
       "cluster: {}}]",
       "cluster.server is not set"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, "
       "cluster: {server: 'ftp://h'}}]",
       "must start with https://"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: "
       "[{name: c, cluster: {server: 'https://h'}}]\nusers: [{name: u, user: {exec: {command: "
       "aws}}}]",
       "users[u].user: exec and auth-provider"},
      {"current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, "
       "cluster: {server: 'https://h', certificate-authority-data: '!!!'}}]",
       "certificate-authority-data: not valid base64"},
  };
  for (const auto& tc : cases) {
    auto c = ParseKubeconfig(tc.text, "");
    ASSERT_FALSE(c.ok()) << tc.text;
    EXPECT_NE(c.status().message().find(tc.want), std::string::npos)
        << c.status() << " want " << tc.want;
  }
  // A server without a port gets the scheme's default.
  auto c = ParseKubeconfig(
      "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, "
      "cluster: {server: 'https://kubernetes.default.svc'}}]",
      "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->host, "kubernetes.default.svc");
  EXPECT_EQ(c->port, 443);
}

TEST(InClusterConfigTest, ReadsTheServiceAccountMountAndEnvironment) {
  TempDir dir;
  dir.Write("token", "t1\n");
  dir.Write("ca.crt", "CA");
  dir.Write("namespace", "prod\n");
  std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
                                            {"KUBERNETES_SERVICE_PORT", "443"}};
  auto getenv_fn = [&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  auto c = LoadInClusterConfig(dir.path(), getenv_fn);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->HostPort(), "10.96.0.1:443");
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->namespace_, "prod");
  EXPECT_EQ(c->token->Token(), "t1");

  env.erase("KUBERNETES_SERVICE_HOST");
  EXPECT_TRUE(absl::IsFailedPrecondition(LoadInClusterConfig(dir.path(), getenv_fn).status()));
  env["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";
  env["KUBERNETES_SERVICE_PORT"] = "https";
  auto bad_port = LoadInClusterConfig(dir.path(), getenv_fn);
  EXPECT_NE(bad_port.status().message().find("KUBERNETES_SERVICE_PORT"), std::string::npos);
  env["KUBERNETES_SERVICE_PORT"] = "443";
  std::filesystem::remove(dir.path() + "/token");
  auto no_token = LoadInClusterConfig(dir.path(), getenv_fn);
  EXPECT_TRUE(absl::IsNotFound(no_token.status())) << no_token.status();
}

TEST(TokenSourceTest, RereadsARotatedTokenFile) {
  TempDir dir;
  dir.Write("token", "first");
  TokenSource source(dir.path() + "/token", std::chrono::seconds(0));
  EXPECT_EQ(source.Token(), "first");
  dir.Write("token", "second");
  EXPECT_EQ(source.Token(), "second");
  // A failed read keeps the last good token.
  std::filesystem::remove(dir.path() + "/token");
  EXPECT_EQ(source.Token(), "second");

  TokenSource cached(dir.path() + "/t2", std::chrono::seconds(3600));
  dir.Write("t2", "one");
  EXPECT_EQ(cached.Token(), "one");
  dir.Write("t2", "two");
  EXPECT_EQ(cached.Token(), "one");  // not re-read before the refresh period
}

}  // namespace
}  // namespace epp::k8s
