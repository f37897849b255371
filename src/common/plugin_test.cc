#include "common/plugin.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace epp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakePlugin : public Plugin {
 public:
  FakePlugin(std::string name, int64_t value) : Plugin(std::move(name)), value_(value) {}
  std::string_view Type() const override { return "fake"; }
  int64_t value() const { return value_; }

 private:
  int64_t value_;
};

absl::StatusOr<std::unique_ptr<Plugin>> CreateFake(const std::string& name,
                                                   const YAML::Node& params) {
  ParamReader reader(params);
  int64_t value = reader.Int("value", 7);
  if (absl::Status s = reader.Finish(); !s.ok()) return s;
  return std::make_unique<FakePlugin>(name, value);
}

TEST(PluginRegistryTest, RegisterHasTypesAndCreate) {
  PluginRegistry registry;
  EXPECT_FALSE(registry.Has("fake"));
  registry.Register("fake", CreateFake);
  registry.Register("another", CreateFake);
  EXPECT_TRUE(registry.Has("fake"));
  EXPECT_FALSE(registry.Has("fak"));
  EXPECT_THAT(registry.Types(), ElementsAre("another", "fake"));

  auto plugin = registry.Create("fake", "my-fake", YAML::Load("value: 42"));
  ASSERT_TRUE(plugin.ok()) << plugin.status();
  EXPECT_EQ((*plugin)->Name(), "my-fake");
  EXPECT_EQ((*plugin)->Type(), "fake");
  auto* fake = dynamic_cast<FakePlugin*>(plugin->get());
  ASSERT_NE(fake, nullptr);
  EXPECT_EQ(fake->value(), 42);
}

TEST(PluginRegistryTest, CreateWithNullParametersUsesDefaults) {
  PluginRegistry registry;
  registry.Register("fake", CreateFake);
  auto plugin = registry.Create("fake", "f", YAML::Node());
  ASSERT_TRUE(plugin.ok()) << plugin.status();
  EXPECT_EQ(dynamic_cast<FakePlugin*>(plugin->get())->value(), 7);
}

TEST(PluginRegistryTest, UnknownTypeNamesPluginAndType) {
  PluginRegistry registry;
  registry.Register("fake", CreateFake);
  auto plugin = registry.Create("no-such-type", "my-plugin", YAML::Node());
  ASSERT_FALSE(plugin.ok());
  EXPECT_EQ(plugin.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plugin.status().message(), HasSubstr("\"my-plugin\""));
  EXPECT_THAT(plugin.status().message(), HasSubstr("\"no-such-type\""));
}

TEST(PluginRegistryTest, FactoryErrorIsPrefixedWithNameAndType) {
  PluginRegistry registry;
  registry.Register(
      "failing",
      [](const std::string&, const YAML::Node&) -> absl::StatusOr<std::unique_ptr<Plugin>> {
        return absl::FailedPreconditionError("boom");
      });
  auto plugin = registry.Create("failing", "p1", YAML::Node());
  ASSERT_FALSE(plugin.ok());
  // The factory's code is kept; the message is prefixed.
  EXPECT_EQ(plugin.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(plugin.status().message(), "plugin \"p1\" (failing): boom");
}

TEST(PluginRegistryTest, RegisterReplacesFactory) {
  PluginRegistry registry;
  registry.Register(
      "fake", [](const std::string&, const YAML::Node&) -> absl::StatusOr<std::unique_ptr<Plugin>> {
        return absl::InternalError("old");
      });
  registry.Register("fake", CreateFake);
  EXPECT_TRUE(registry.Create("fake", "f", YAML::Node()).ok());
  EXPECT_EQ(registry.Types().size(), 1u);
}

TEST(ParamReaderTest, TypedGetters) {
  YAML::Node params = YAML::Load(R"(
count: 12
enabled: true
ratio: 0.25
label: hello
)");
  ParamReader reader(params);
  EXPECT_EQ(reader.Int("count", 0), 12);
  EXPECT_TRUE(reader.Bool("enabled", false));
  EXPECT_DOUBLE_EQ(reader.Double("ratio", 0), 0.25);
  EXPECT_EQ(reader.String("label", ""), "hello");
  EXPECT_TRUE(reader.Finish().ok());
}

TEST(ParamReaderTest, DefaultsWhenAbsentOrNull) {
  for (const char* text : {"", "~", "{}", "count: ~"}) {
    YAML::Node params = YAML::Load(text);
    ParamReader reader(params);
    EXPECT_EQ(reader.Int("count", -3), -3) << text;
    EXPECT_FALSE(reader.Bool("enabled", false)) << text;
    EXPECT_TRUE(reader.Bool("on", true)) << text;
    EXPECT_DOUBLE_EQ(reader.Double("ratio", 1.5), 1.5) << text;
    EXPECT_EQ(reader.String("label", "dflt"), "dflt") << text;
    EXPECT_TRUE(reader.Finish().ok()) << text;
  }
  ParamReader undefined{YAML::Node()};
  EXPECT_EQ(undefined.Int("count", 5), 5);
  EXPECT_TRUE(undefined.Finish().ok());
}

TEST(ParamReaderTest, WrongTypeNamesParameter) {
  struct Case {
    const char* yaml;
    const char* want;  // substring of the error
  } cases[] = {
      {"count: abc", "parameter \"count\" must be an integer"},
      {"count: 1.5", "parameter \"count\" must be an integer"},
      {"count: [1]", "parameter \"count\" must be an integer"},
      {"enabled: maybe", "parameter \"enabled\" must be a boolean"},
      {"ratio: fast", "parameter \"ratio\" must be a number"},
      {"label: {a: b}", "parameter \"label\" must be a string"},
      {"label: [x]", "parameter \"label\" must be a string"},
  };
  for (const auto& c : cases) {
    ParamReader reader(YAML::Load(c.yaml));
    EXPECT_EQ(reader.Int("count", 1), 1) << c.yaml;
    reader.Bool("enabled", false);
    reader.Double("ratio", 0);
    EXPECT_EQ(reader.String("label", "d"), "d") << c.yaml;
    absl::Status s = reader.Finish();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_THAT(s.message(), HasSubstr(c.want)) << c.yaml;
  }
}

TEST(ParamReaderTest, FirstErrorWins) {
  ParamReader reader(YAML::Load("a: x\nb: y"));
  reader.Int("a", 0);
  reader.Int("b", 0);
  absl::Status s = reader.Finish();
  EXPECT_THAT(s.message(), HasSubstr("\"a\""));
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("\"b\"")));
}

TEST(ParamReaderTest, UnknownParameterRejected) {
  ParamReader reader(YAML::Load("count: 3\nbogus: 1"));
  EXPECT_EQ(reader.Int("count", 0), 3);
  absl::Status s = reader.Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("unknown parameter \"bogus\""));
}

TEST(ParamReaderTest, UnreadParameterIsUnknown) {
  ParamReader reader(YAML::Load("count: 3"));
  EXPECT_THAT(reader.Finish().message(), HasSubstr("unknown parameter \"count\""));
}

TEST(ParamReaderTest, NonMapParametersRejected) {
  for (const char* text : {"[1, 2]", "just-a-string", "42"}) {
    ParamReader reader(YAML::Load(text));
    EXPECT_EQ(reader.Int("count", 9), 9) << text;
    absl::Status s = reader.Finish();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(s.message(), HasSubstr("parameters must be a map")) << text;
  }
}

}  // namespace
}  // namespace epp
