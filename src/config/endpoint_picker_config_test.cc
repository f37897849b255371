#include "config/endpoint_picker_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace epp::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kHeader[] =
    "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n";

std::string WithHeader(const std::string& rest) { return kHeader + rest; }

TEST(ParseEndpointPickerConfigTest, BothApiVersionsAccepted) {
  for (const char* version : {"inference.networking.x-k8s.io/v1alpha1", "llm-d.ai/v1alpha1"}) {
    auto c = ParseEndpointPickerConfig(std::string("apiVersion: ") + version +
                                       "\nkind: EndpointPickerConfig\n");
    ASSERT_TRUE(c.ok()) << version << ": " << c.status();
    EXPECT_EQ(c->api_version, version);
    EXPECT_EQ(c->kind, "EndpointPickerConfig");
    EXPECT_TRUE(c->plugins.empty());
    EXPECT_TRUE(c->profiles.empty());
    EXPECT_FALSE(c->data_layer.present);
  }
}

TEST(ParseEndpointPickerConfigTest, FullConfig) {
  auto c = ParseEndpointPickerConfig(WithHeader(R"(
featureGates: [dataLayer, flowControl]
plugins:
- name: picker
  type: max-score-picker
  parameters:
    maxNumOfEndpoints: 2
- type: queue-scorer
- type: file-discovery
  parameters: {path: /tmp/x}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2.5
  - pluginRef: picker
saturationDetector:
  pluginRef: queue-scorer
parser:
  pluginRef: picker
dataLayer:
  discovery:
    pluginRef: file-discovery
flowControl:
  maxBytes: 10
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->feature_gates, ElementsAre("dataLayer", "flowControl"));
  ASSERT_EQ(c->plugins.size(), 3u);
  EXPECT_EQ(c->plugins[0].name, "picker");
  EXPECT_EQ(c->plugins[0].type, "max-score-picker");
  EXPECT_EQ(c->plugins[0].parameters["maxNumOfEndpoints"].as<int>(), 2);
  // Plugin name defaults to the type.
  EXPECT_EQ(c->plugins[1].name, "queue-scorer");
  EXPECT_EQ(c->plugins[1].type, "queue-scorer");
  EXPECT_FALSE(c->plugins[1].parameters.IsDefined() && !c->plugins[1].parameters.IsNull());
  EXPECT_EQ(c->plugins[2].parameters["path"].as<std::string>(), "/tmp/x");
  ASSERT_EQ(c->profiles.size(), 1u);
  EXPECT_EQ(c->profiles[0].name, "default");
  ASSERT_EQ(c->profiles[0].plugins.size(), 2u);
  EXPECT_EQ(c->profiles[0].plugins[0].plugin_ref, "queue-scorer");
  ASSERT_TRUE(c->profiles[0].plugins[0].weight.has_value());
  EXPECT_DOUBLE_EQ(*c->profiles[0].plugins[0].weight, 2.5);
  EXPECT_EQ(c->profiles[0].plugins[1].plugin_ref, "picker");
  EXPECT_FALSE(c->profiles[0].plugins[1].weight.has_value());
  EXPECT_EQ(c->saturation_detector_ref.value_or(""), "queue-scorer");
  EXPECT_EQ(c->parser_ref.value_or(""), "picker");
  EXPECT_TRUE(c->data_layer.present);
  EXPECT_FALSE(c->data_layer.sources_present);
  EXPECT_EQ(c->data_layer.discovery_ref.value_or(""), "file-discovery");
  EXPECT_EQ(c->flow_control["maxBytes"].as<int>(), 10);
}

TEST(ParseEndpointPickerConfigTest, IntegerWeightParsed) {
  auto c = ParseEndpointPickerConfig(WithHeader(R"(
plugins:
- type: s
schedulingProfiles:
- name: p
  plugins:
  - pluginRef: s
    weight: 3
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->profiles[0].plugins[0].weight.value_or(-1), 3.0);
}

TEST(ParseEndpointPickerConfigTest, NonFiniteWeightRejected) {
  for (const char* w : {".nan", ".inf", "-.inf"}) {
    auto c = ParseEndpointPickerConfig(WithHeader(std::string(R"(
plugins:
- type: s
schedulingProfiles:
- name: p
  plugins:
  - pluginRef: s
    weight: )") + w + "\n"));
    ASSERT_FALSE(c.ok()) << w;
    EXPECT_NE(c.status().message().find("weight: must be finite"), std::string::npos) << c.status();
  }
}

TEST(ParseEndpointPickerConfigTest, DataLayerSources) {
  auto c = ParseEndpointPickerConfig(WithHeader(R"(
plugins:
- type: metrics-source
- type: extractor
dataLayer:
  sources:
  - pluginRef: metrics-source
    extractors:
    - pluginRef: extractor
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->data_layer.present);
  EXPECT_TRUE(c->data_layer.sources_present);
  ASSERT_EQ(c->data_layer.sources.size(), 1u);
  EXPECT_EQ(c->data_layer.sources[0].plugin_ref, "metrics-source");
  EXPECT_THAT(c->data_layer.sources[0].extractor_refs, ElementsAre("extractor"));
  EXPECT_FALSE(c->data_layer.discovery_ref.has_value());
}

TEST(ParseEndpointPickerConfigTest, ExplicitEmptySourcesList) {
  auto c = ParseEndpointPickerConfig(WithHeader("dataLayer:\n  sources: []\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->data_layer.present);
  EXPECT_TRUE(c->data_layer.sources_present);
  EXPECT_TRUE(c->data_layer.sources.empty());
}

TEST(ParseEndpointPickerConfigTest, DataLayerWithoutSources) {
  auto c = ParseEndpointPickerConfig(WithHeader("dataLayer: {}\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->data_layer.present);
  EXPECT_FALSE(c->data_layer.sources_present);
}

TEST(ParseEndpointPickerConfigTest, Rejected) {
  struct Case {
    const char* name;
    std::string yaml;
    std::vector<std::string> want;  // substrings of the error message
  } cases[] = {
      {"wrong kind",
       "apiVersion: llm-d.ai/v1alpha1\nkind: SomethingElse\n",
       {"kind", "\"SomethingElse\""}},
      {"missing kind", "apiVersion: llm-d.ai/v1alpha1\n", {"kind"}},
      {"wrong apiVersion",
       "apiVersion: v1\nkind: EndpointPickerConfig\n",
       {"apiVersion", "\"v1\""}},
      {"missing apiVersion", "kind: EndpointPickerConfig\n", {"apiVersion"}},
      {"unknown top-level field", WithHeader("pluginz: []\n"), {"unknown field \"pluginz\""}},
      {"unknown field in plugin",
       WithHeader("plugins:\n- type: a\n  params: {}\n"),
       {"plugins[0]", "unknown field \"params\""}},
      {"unknown field in profile",
       WithHeader("schedulingProfiles:\n- name: p\n  filters: []\n"),
       {"schedulingProfiles[0]", "unknown field \"filters\""}},
      {"unknown field in profile plugin ref",
       WithHeader("plugins:\n- type: a\nschedulingProfiles:\n- name: p\n  plugins:\n"
                  "  - pluginRef: a\n    wieght: 1\n"),
       {"schedulingProfiles[0].plugins[0]", "unknown field \"wieght\""}},
      {"unknown field in dataLayer",
       WithHeader("dataLayer:\n  source: []\n"),
       {"dataLayer", "unknown field \"source\""}},
      {"plugin without type", WithHeader("plugins:\n- name: a\n"), {"plugins[0]", "type"}},
      {"duplicate plugin names",
       WithHeader("plugins:\n- name: x\n  type: a\n- name: x\n  type: b\n"),
       {"plugins[1]", "duplicate plugin name \"x\""}},
      {"duplicate defaulted plugin names",
       WithHeader("plugins:\n- type: a\n- type: a\n"),
       {"duplicate plugin name \"a\""}},
      {"unnamed profile",
       WithHeader("schedulingProfiles:\n- plugins: []\n"),
       {"schedulingProfiles[0]", "name is required"}},
      {"duplicate profile",
       WithHeader("schedulingProfiles:\n- name: p\n- name: p\n"),
       {"schedulingProfiles[1]", "duplicate profile name \"p\""}},
      {"unknown feature gate",
       WithHeader("featureGates: [dataLayer, warpDrive]\n"),
       {"featureGates", "unknown feature gate \"warpDrive\""}},
      {"dangling profile ref",
       WithHeader("plugins:\n- type: a\nschedulingProfiles:\n- name: p\n  plugins:\n"
                  "  - pluginRef: ghost\n"),
       {"schedulingProfiles[0]", "\"ghost\""}},
      {"dangling discovery ref",
       WithHeader("dataLayer:\n  discovery:\n    pluginRef: ghost-discovery\n"),
       {"dataLayer.discovery", "\"ghost-discovery\""}},
      {"dangling source ref",
       WithHeader("dataLayer:\n  sources:\n  - pluginRef: ghost-source\n"),
       {"dataLayer.sources[0]", "\"ghost-source\""}},
      {"dangling extractor ref",
       WithHeader("plugins:\n- type: src\ndataLayer:\n  sources:\n  - pluginRef: src\n"
                  "    extractors:\n    - pluginRef: ghost-extractor\n"),
       {"dataLayer.sources[0].extractors", "\"ghost-extractor\""}},
      {"dangling saturation detector ref",
       WithHeader("saturationDetector:\n  pluginRef: ghost-sd\n"),
       {"saturationDetector", "\"ghost-sd\""}},
      {"non-number weight",
       WithHeader("plugins:\n- type: s\nschedulingProfiles:\n- name: p\n  plugins:\n"
                  "  - pluginRef: s\n    weight: heavy\n"),
       {"schedulingProfiles[0].plugins[0].weight", "must be a number"}},
      {"plugins not a list", WithHeader("plugins: {a: b}\n"), {"plugins", "must be a list"}},
      {"config not a map", "- a\n- b\n", {"config", "must be a map"}},
  };
  for (const auto& c : cases) {
    auto config = ParseEndpointPickerConfig(c.yaml);
    ASSERT_FALSE(config.ok()) << c.name;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    for (const auto& w : c.want) {
      EXPECT_THAT(config.status().message(), HasSubstr(w)) << c.name;
    }
  }
}

TEST(ParseEndpointPickerConfigTest, InvalidYaml) {
  auto c = ParseEndpointPickerConfig("apiVersion: [unclosed\n");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("not valid YAML"));
}

TEST(ParseEndpointPickerConfigTest, EmptyConfig) {
  for (const char* text : {"", "   \n", "# only a comment\n", "~"}) {
    auto c = ParseEndpointPickerConfig(text);
    ASSERT_FALSE(c.ok()) << "[" << text << "]";
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(c.status().message(), HasSubstr("config is empty"));
  }
}

TEST(LoadEndpointPickerConfigFileTest, MissingPathIsNotFound) {
  const std::string path = "/nonexistent-dir-epp-test/config.yaml";
  auto c = LoadEndpointPickerConfigFile(path);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(c.status().message(), HasSubstr(path));
}

// A tiny plugin type for InstantiatePlugins.
class TinyPlugin : public Plugin {
 public:
  TinyPlugin(std::string name, std::string tag) : Plugin(std::move(name)), tag_(std::move(tag)) {}
  std::string_view Type() const override { return "tiny"; }
  const std::string& tag() const { return tag_; }

 private:
  std::string tag_;
};

PluginRegistry TinyRegistry() {
  PluginRegistry registry;
  registry.Register("tiny",
                    [](const std::string& name,
                       const YAML::Node& params) -> absl::StatusOr<std::unique_ptr<Plugin>> {
                      ParamReader reader(params);
                      std::string tag = reader.String("tag", "none");
                      if (absl::Status s = reader.Finish(); !s.ok()) return s;
                      return std::make_unique<TinyPlugin>(name, tag);
                    });
  return registry;
}

TEST(InstantiatePluginsTest, BuildsInDeclarationOrder) {
  auto config = ParseEndpointPickerConfig(WithHeader(R"(
plugins:
- name: zeta
  type: tiny
  parameters: {tag: first}
- name: alpha
  type: tiny
- type: tiny
  parameters: {tag: third}
)"));
  ASSERT_TRUE(config.ok()) << config.status();
  PluginRegistry registry = TinyRegistry();
  auto set = InstantiatePlugins(*config, registry);
  ASSERT_TRUE(set.ok()) << set.status();
  const auto& all = (*set)->All();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0]->Name(), "zeta");
  EXPECT_EQ(all[1]->Name(), "alpha");
  EXPECT_EQ(all[2]->Name(), "tiny");
  EXPECT_EQ((*set)->FindAs<TinyPlugin>("zeta")->tag(), "first");
  EXPECT_EQ((*set)->FindAs<TinyPlugin>("alpha")->tag(), "none");
  EXPECT_EQ((*set)->FindAs<TinyPlugin>("tiny")->tag(), "third");
  EXPECT_EQ((*set)->Find("missing"), nullptr);
  EXPECT_EQ((*set)->Find("alpha"), all[1].get());
}

TEST(InstantiatePluginsTest, UnknownTypeNamesPlugin) {
  auto config = ParseEndpointPickerConfig(WithHeader(R"(
plugins:
- name: ok
  type: tiny
- name: mystery
  type: no-such-type
)"));
  ASSERT_TRUE(config.ok()) << config.status();
  PluginRegistry registry = TinyRegistry();
  auto set = InstantiatePlugins(*config, registry);
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(set.status().message(), HasSubstr("\"mystery\""));
  EXPECT_THAT(set.status().message(), HasSubstr("no-such-type"));
}

TEST(InstantiatePluginsTest, FactoryErrorNamesPlugin) {
  auto config = ParseEndpointPickerConfig(WithHeader(R"(
plugins:
- name: bad
  type: tiny
  parameters: {colour: red}
)"));
  ASSERT_TRUE(config.ok()) << config.status();
  PluginRegistry registry = TinyRegistry();
  auto set = InstantiatePlugins(*config, registry);
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(set.status().message(), HasSubstr("\"bad\""));
  EXPECT_THAT(set.status().message(), HasSubstr("\"colour\""));
}

}  // namespace
}  // namespace epp::config
