// Plugin: the base of every configurable component (scheduling filters, scorers, pickers,
// profile handlers, discovery sources), and the registry that builds them by type name from an
// EndpointPickerConfig `plugins[]` entry. Roles are found by dynamic_cast, as the reference does
// with interface assertions.
#ifndef EPP_COMMON_PLUGIN_H_
#define EPP_COMMON_PLUGIN_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace epp {

class Plugin {
 public:
  explicit Plugin(std::string name) : name_(std::move(name)) {}
  virtual ~Plugin() = default;
  // The registered type name, kebab-case as in the reference (e.g. "max-score-picker").
  virtual std::string_view Type() const = 0;
  // The instance name from the config (defaults to the type).
  const std::string& Name() const { return name_; }

 private:
  std::string name_;
};

// Builds one plugin. `parameters` is the entry's `parameters` node (may be null/undefined).
// Errors must name the field; the caller prefixes the plugin name.
using PluginFactory = std::function<absl::StatusOr<std::unique_ptr<Plugin>>(
    const std::string& name, const YAML::Node& parameters)>;

// Registry of plugin factories by type. Filled once at start (RegisterBuiltinPlugins) and then
// only read; not synchronized.
class PluginRegistry {
 public:
  void Register(std::string type, PluginFactory factory);
  bool Has(std::string_view type) const;
  absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& type, const std::string& name,
                                                 const YAML::Node& parameters) const;
  std::vector<std::string> Types() const;

 private:
  std::map<std::string, PluginFactory, std::less<>> factories_;
};

// Strict reader for a plugin's `parameters` map: typed getters that record errors naming the
// field, and Finish() that rejects unknown keys.
class ParamReader {
 public:
  explicit ParamReader(const YAML::Node& params);
  int64_t Int(const std::string& key, int64_t default_value);
  bool Bool(const std::string& key, bool default_value);
  double Double(const std::string& key, double default_value);
  std::string String(const std::string& key, const std::string& default_value);
  // A parameter of any kind (lists, maps) for the caller to decode; undefined when absent.
  YAML::Node Node(const std::string& key);
  // OK, or InvalidArgument naming the first bad or unknown parameter.
  absl::Status Finish();

 private:
  std::optional<YAML::Node> Lookup(const std::string& key);
  template <typename T>
  T Get(const std::string& key, T default_value, std::string_view what);
  YAML::Node params_;
  std::vector<std::string> seen_;
  std::string error_;
};

}  // namespace epp

#endif  // EPP_COMMON_PLUGIN_H_
