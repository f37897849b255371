#include "datalayer/plugins.h"

#include "gtest/gtest.h"

namespace epp::datalayer {
namespace {

TEST(MetricsDataSourceTest, DefaultsAndParameters) {
  auto p = MetricsDataSource::Create("src", YAML::Node());
  ASSERT_TRUE(p.ok()) << p.status();
  auto* s = dynamic_cast<MetricsDataSource*>(p->get());
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->scheme(), "http");
  EXPECT_EQ(s->path(), "/metrics");
  EXPECT_TRUE(s->insecure_skip_verify());
  auto q =
      MetricsDataSource::Create("src", YAML::Load("{path: /stats, insecureSkipVerify: false}"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(dynamic_cast<MetricsDataSource*>(q->get())->path(), "/stats");
}

TEST(MetricsDataSourceTest, Https) {
  auto p =
      MetricsDataSource::Create("src", YAML::Load("{scheme: https, insecureSkipVerify: false}"));
  ASSERT_TRUE(p.ok()) << p.status();
  auto* s = dynamic_cast<MetricsDataSource*>(p->get());
  EXPECT_EQ(s->scheme(), "https");
  EXPECT_FALSE(s->insecure_skip_verify());
}

TEST(MetricsDataSourceTest, Errors) {
  struct Case {
    const char* yaml;
    absl::StatusCode code;
    const char* part;
  } cases[] = {
      {"{scheme: ftp}", absl::StatusCode::kInvalidArgument, "scheme"},
      {"{path: metrics}", absl::StatusCode::kInvalidArgument, "path"},
      {"{port: 1}", absl::StatusCode::kInvalidArgument, "port"},
  };
  for (const auto& c : cases) {
    auto p = MetricsDataSource::Create("src", YAML::Load(c.yaml));
    ASSERT_FALSE(p.ok()) << c.yaml;
    EXPECT_EQ(p.status().code(), c.code) << c.yaml;
    EXPECT_NE(p.status().message().find(c.part), std::string::npos) << p.status();
  }
}

TEST(CoreMetricsExtractorTest, DefaultEngine) {
  auto p = CoreMetricsExtractor::Create("x", YAML::Node());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(dynamic_cast<CoreMetricsExtractor*>(p->get())->default_engine(), "vllm");
  auto q = CoreMetricsExtractor::Create("x", YAML::Load("{defaultEngine: sglang}"));
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(dynamic_cast<CoreMetricsExtractor*>(q->get())->default_engine(), "sglang");
  auto bad = CoreMetricsExtractor::Create("x", YAML::Load("{defaultEngine: tgi}"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tgi"), std::string::npos);
  auto unknown = CoreMetricsExtractor::Create("x", YAML::Load("{engineConfigs: []}"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("engineConfigs"), std::string::npos);
}

}  // namespace
}  // namespace epp::datalayer
