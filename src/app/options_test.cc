#include "app/options.h"

#include <stdlib.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace epp::app {
namespace {

using ::testing::HasSubstr;

// Runs ParseOptions on {"epp", args...}.
absl::StatusOr<Options> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "epp");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return ParseOptions(static_cast<int>(argv.size()), argv.data());
}

// Unsets NAMESPACE for the test and restores it afterwards.
class OptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* ns = getenv("NAMESPACE")) saved_ = ns;
    unsetenv("NAMESPACE");
  }
  void TearDown() override {
    if (saved_) {
      setenv("NAMESPACE", saved_->c_str(), 1);
    } else {
      unsetenv("NAMESPACE");
    }
  }
  std::optional<std::string> saved_;
};

TEST_F(OptionsTest, Defaults) {
  auto o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->grpc_port, 9002);
  EXPECT_EQ(o->grpc_health_port, 9003);
  EXPECT_EQ(o->metrics_port, 9090);
  EXPECT_TRUE(o->secure_serving);
  EXPECT_EQ(o->verbosity, 2);
  EXPECT_EQ(o->pool_namespace, "default");
  EXPECT_EQ(o->pool_name, "");
  EXPECT_EQ(o->pool_group, "inference.networking.k8s.io");
  EXPECT_EQ(o->refresh_metrics_interval, "50ms");
  EXPECT_EQ(o->max_request_body_bytes, 64ull << 20);
  EXPECT_FALSE(o->health_checking);
  EXPECT_FALSE(o->ha_enable_leader_election);
  EXPECT_FALSE(o->disable_endpoint_subset_filter);
  EXPECT_EQ(o->bind_address, "0.0.0.0");
}

TEST_F(OptionsTest, NamespaceFromEnvironment) {
  setenv("NAMESPACE", "team-a", 1);
  auto o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->pool_namespace, "team-a");
  // The flag wins over the environment.
  o = Parse({"--pool-namespace=team-b"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->pool_namespace, "team-b");
}

TEST_F(OptionsTest, ParsesFlags) {
  auto o = Parse({"--grpc-port=1234", "--grpc-health-port", "1235", "--metrics-port=0",
                  "--pool-name", "my-pool", "--config-file=/etc/epp/config.yaml",
                  "--secure-serving=false", "--health-checking", "--ha-enable-leader-election",
                  "--disable-endpoint-subset-filter", "--refresh-metrics-interval=2s",
                  "--max-request-body-bytes=1024", "--cert-path=/certs", "--bind-address=127.0.0.1",
                  "--kubeconfig", "/home/u/kc", "--service-account-dir=/sa"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->kubeconfig, "/home/u/kc");
  EXPECT_EQ(o->service_account_dir, "/sa");
  EXPECT_EQ(o->grpc_port, 1234);
  EXPECT_EQ(o->grpc_health_port, 1235);
  EXPECT_EQ(o->metrics_port, 0);
  EXPECT_EQ(o->pool_name, "my-pool");
  EXPECT_EQ(o->config_file, "/etc/epp/config.yaml");
  EXPECT_FALSE(o->secure_serving);
  EXPECT_TRUE(o->health_checking);
  EXPECT_TRUE(o->ha_enable_leader_election);
  EXPECT_TRUE(o->disable_endpoint_subset_filter);
  EXPECT_EQ(o->refresh_metrics_interval, "2s");
  EXPECT_EQ(o->max_request_body_bytes, 1024u);
  EXPECT_EQ(o->cert_path, "/certs");
  EXPECT_EQ(o->bind_address, "127.0.0.1");
}

TEST_F(OptionsTest, GoStyleSingleDash) {
  auto o = Parse({"-pool-name", "x", "-v=4", "-grpc-port=7000", "-secure-serving=false"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->pool_name, "x");
  EXPECT_EQ(o->verbosity, 4);
  EXPECT_EQ(o->grpc_port, 7000);
  EXPECT_FALSE(o->secure_serving);

  o = Parse({"-v", "5"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->verbosity, 5);

  o = Parse({"-config-text", "kind: x"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->config_text, "kind: x");
}

TEST_F(OptionsTest, ConfigFileAndTextTogetherRejected) {
  auto o = Parse({"--config-file=/a.yaml", "--config-text=b"});
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(o.status().message(), HasSubstr("config"));
}

TEST_F(OptionsTest, Rejected) {
  struct Case {
    std::vector<std::string> args;
    const char* want;
  } cases[] = {
      {{"--no-such-flag"}, "--no-such-flag"},
      {{"--bogus=3"}, "bogus"},
      {{"-unknown-go-flag"}, "unknown-go-flag"},
      {{"--grpc-port=70000"}, "grpc-port"},
      {{"--grpc-port=abc"}, "grpc-port"},
      {{"--metrics-port", "-1"}, "metrics-port"},
      {{"--grpc-health-port=99999"}, "grpc-health-port"},
      {{"--refresh-metrics-interval=soon"}, "--refresh-metrics-interval"},
      {{"--refresh-metrics-interval=10"}, "--refresh-metrics-interval"},
      {{"--refresh-metrics-interval=5 parsecs"}, "--refresh-metrics-interval"},
      {{"--max-request-body-bytes=0"}, "max-request-body-bytes"},
      {{"-v=loud"}, "-v"},
  };
  for (const auto& c : cases) {
    auto o = Parse(c.args);
    ASSERT_FALSE(o.ok()) << c.args[0];
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << c.args[0];
    EXPECT_THAT(o.status().message(), HasSubstr(c.want)) << c.args[0];
  }
}

TEST_F(OptionsTest, HelpReturnsCancelledWithUsage) {
  for (const char* flag : {"--help", "-h"}) {
    auto o = Parse({flag});
    ASSERT_FALSE(o.ok()) << flag;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kCancelled) << flag;
    EXPECT_THAT(o.status().message(), HasSubstr("--grpc-port")) << flag;
    EXPECT_THAT(o.status().message(), HasSubstr("--pool-name")) << flag;
  }
}

}  // namespace
}  // namespace epp::app

namespace epp::app {
namespace {

TEST(OptionsRepeatTest, RepeatedFlagTakesTheLastValueAsGoFlagsDo) {
  auto o = Parse({"-v", "3", "-v", "1", "--grpc-port", "1", "--grpc-port=2"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->verbosity, 1);
  EXPECT_EQ(o->grpc_port, 2);
}

}  // namespace
}  // namespace epp::app

namespace epp::app {
namespace {

TEST(OptionsProcessResponsesTest, DefaultsOnAndCanBeTurnedOff) {
  auto on = Parse({});
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->process_responses);
  auto off = Parse({"--process-responses=false"});
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->process_responses);
}

}  // namespace
}  // namespace epp::app

namespace epp::app {
namespace {

TEST(OptionsCompatTest, ReferenceFlagsAreAcceptedAndReported) {
  auto o =
      Parse({"--zap-encoder", "json", "--tracing=false", "--enable-pprof", "--pool-name", "p"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->ignored_flags,
            (std::vector<std::string>{"--enable-pprof", "--tracing", "--zap-encoder"}));
  EXPECT_EQ(o->pool_name, "p");
}

TEST(OptionsCompatTest, EndpointSelectorIsParsed) {
  auto o = Parse({"--endpoint-selector", "app=vllm"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->endpoint_selector, "app=vllm");
}

}  // namespace
}  // namespace epp::app

namespace epp::app {
namespace {

TEST(OptionsDurationTest, RefreshIntervalParsed) {
  auto o = Parse({"--refresh-metrics-interval", "100ms"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->refresh_metrics_interval_ns.count(), 100'000'000);
  EXPECT_FALSE(Parse({"--refresh-metrics-interval", "0s"}).ok());
}

}  // namespace
}  // namespace epp::app
