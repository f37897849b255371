// EndpointPickerConfig: the YAML configuration file of the reference EPP (GIE
// `inference.networking.x-k8s.io/v1alpha1` and llm-d `llm-d.ai/v1alpha1`), decoded strictly
// into typed structs, and the plugin set instantiated from it.
#ifndef EPP_CONFIG_ENDPOINT_PICKER_CONFIG_H_
#define EPP_CONFIG_ENDPOINT_PICKER_CONFIG_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/plugin.h"
#include "yaml-cpp/yaml.h"

namespace epp::config {

struct PluginSpec {
  std::string name;  // defaults to type
  std::string type;
  YAML::Node parameters;
};

struct ProfilePluginRef {
  std::string plugin_ref;
  std::optional<double> weight;  // scorers only; unset means 1
};

struct ProfileSpec {
  std::string name;
  std::vector<ProfilePluginRef> plugins;
};

struct DataSourceSpec {
  std::string plugin_ref;
  std::vector<std::string> extractor_refs;
};

struct DataLayerSpec {
  bool present = false;          // `dataLayer` key given
  bool sources_present = false;  // `dataLayer.sources` key given (an empty list disables scraping)
  std::vector<DataSourceSpec> sources;
  std::optional<std::string> discovery_ref;  // `dataLayer.discovery.pluginRef`
};

struct EndpointPickerConfig {
  std::string api_version;
  std::string kind;
  std::vector<std::string> feature_gates;
  std::vector<PluginSpec> plugins;
  std::vector<ProfileSpec> profiles;
  std::optional<std::string> saturation_detector_ref;
  std::optional<std::string> parser_ref;
  YAML::Node flow_control;
  DataLayerSpec data_layer;
};

// Decodes and validates a config. Errors (InvalidArgument) name the field path and, where one
// is involved, the plugin: unknown fields, wrong kinds/apiVersions, duplicate or unnamed
// plugins and profiles, unknown feature gates, references to undeclared plugins.
absl::StatusOr<EndpointPickerConfig> ParseEndpointPickerConfig(std::string_view yaml_text);

// Reads and parses a config file; errors name the path.
absl::StatusOr<EndpointPickerConfig> LoadEndpointPickerConfigFile(const std::string& path);

// The plugins built from a config, by instance name. Owns them.
class PluginSet {
 public:
  Plugin* Find(std::string_view name) const;
  Plugin* Add(std::unique_ptr<Plugin> plugin);
  // In declaration order.
  const std::vector<std::unique_ptr<Plugin>>& All() const { return plugins_; }

  // Finds `name` and casts it to a role; nullptr when absent or of another role.
  template <typename T>
  T* FindAs(std::string_view name) const {
    return dynamic_cast<T*>(Find(name));
  }

 private:
  std::vector<std::unique_ptr<Plugin>> plugins_;
  std::map<std::string, Plugin*, std::less<>> by_name_;
};

// Builds every `plugins[]` entry with the registry; errors name the plugin.
absl::StatusOr<std::unique_ptr<PluginSet>> InstantiatePlugins(const EndpointPickerConfig& config,
                                                              const PluginRegistry& registry);

}  // namespace epp::config

#endif  // EPP_CONFIG_ENDPOINT_PICKER_CONFIG_H_
