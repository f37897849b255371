#include "app/builtin_plugins.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace epp::app {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

TEST(BuiltinPluginsTest, RegistersEveryBuiltinType) {
  PluginRegistry registry;
  RegisterBuiltinPlugins(registry);
  EXPECT_THAT(registry.Types(),
              UnorderedElementsAre(
                  "file-discovery", "max-score-picker", "random-picker", "weighted-random-picker",
                  "single-profile-handler", "metrics-data-source", "core-metrics-extractor",
                  "queue-scorer", "running-requests-size-scorer", "kv-cache-utilization-scorer",
                  "token-load-scorer", "load-aware-scorer", "lora-affinity-scorer",
                  "inflight-load-producer", "approx-prefix-cache-producer", "prefix-cache-scorer",
                  "utilization-detector", "concurrency-detector", "session-affinity-scorer",
                  "session-affinity-filter", "no-hit-lru-scorer", "prefix-cache-affinity-filter"));
}

TEST(BuiltinPluginsTest, CreatableWithEmptyParameters) {
  PluginRegistry registry;
  RegisterBuiltinPlugins(registry);
  for (const std::string& type : registry.Types()) {
    if (type == "file-discovery") continue;  // needs a path (below)
    for (const YAML::Node& params : {YAML::Node(), YAML::Load("{}")}) {
      auto p = registry.Create(type, "my-" + type, params);
      ASSERT_TRUE(p.ok()) << type << ": " << p.status();
      EXPECT_EQ((*p)->Type(), type);
      EXPECT_EQ((*p)->Name(), "my-" + type);
    }
  }
}

TEST(BuiltinPluginsTest, FileDiscoveryRequiresPath) {
  PluginRegistry registry;
  RegisterBuiltinPlugins(registry);
  auto missing = registry.Create("file-discovery", "fd", YAML::Node());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("path"));
  EXPECT_THAT(missing.status().message(), HasSubstr("\"fd\""));

  auto ok = registry.Create("file-discovery", "fd", YAML::Load("{path: /tmp/endpoints.yaml}"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->Type(), "file-discovery");
}

}  // namespace
}  // namespace epp::app
