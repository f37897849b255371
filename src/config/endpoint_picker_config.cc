#include "config/endpoint_picker_config.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "common/status_macros.h"
#include "common/strings.h"

namespace epp::config {
namespace {

constexpr std::string_view kApiVersions[] = {"inference.networking.x-k8s.io/v1alpha1",
                                             "llm-d.ai/v1alpha1"};
constexpr std::string_view kFeatureGates[] = {"dataLayer", "enableLegacyMetrics", "flowControl"};

absl::Status Err(std::string_view path, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(path, ": ", what));
}

// Rejects keys of `node` (a map) that are not in `allowed`.
absl::Status CheckKeys(const YAML::Node& node, std::string_view path,
                       std::initializer_list<std::string_view> allowed) {
  if (!node.IsMap()) return Err(path, "must be a map");
  for (const auto& kv : node) {
    std::string key = kv.first.Scalar();
    bool ok = false;
    for (auto a : allowed) ok = ok || a == key;
    if (!ok) return Err(path, StrCat("unknown field \"", key, "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ScalarString(const YAML::Node& node, std::string_view path) {
  if (!node.IsScalar()) return Err(path, "must be a string");
  return node.Scalar();
}

absl::StatusOr<std::string> PluginRefOf(const YAML::Node& node, std::string_view path) {
  RETURN_IF_ERROR(CheckKeys(node, path, {"pluginRef"}));
  if (!node["pluginRef"]) return Err(path, "pluginRef is required");
  return ScalarString(node["pluginRef"], StrCat(path, ".pluginRef"));
}

absl::Status ParsePlugins(const YAML::Node& list, EndpointPickerConfig& out) {
  if (!list.IsSequence()) return Err("plugins", "must be a list");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& n = list[i];
    std::string path = StrCat("plugins[", i, "]");
    RETURN_IF_ERROR(CheckKeys(n, path, {"name", "type", "parameters"}));
    PluginSpec spec;
    if (!n["type"]) return Err(path, "type is required");
    ASSIGN_OR_RETURN(spec.type, ScalarString(n["type"], path + ".type"));
    if (spec.type.empty()) return Err(path, "type is required");
    if (n["name"]) {
      ASSIGN_OR_RETURN(spec.name, ScalarString(n["name"], path + ".name"));
    }
    if (spec.name.empty()) spec.name = spec.type;
    if (!names.insert(spec.name).second) {
      return Err(path, StrCat("duplicate plugin name \"", spec.name, "\""));
    }
    spec.parameters = n["parameters"] ? YAML::Clone(n["parameters"]) : YAML::Node();
    out.plugins.push_back(std::move(spec));
  }
  return absl::OkStatus();
}

absl::Status ParseProfiles(const YAML::Node& list, EndpointPickerConfig& out) {
  if (!list.IsSequence()) return Err("schedulingProfiles", "must be a list");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& n = list[i];
    std::string path = StrCat("schedulingProfiles[", i, "]");
    RETURN_IF_ERROR(CheckKeys(n, path, {"name", "plugins"}));
    ProfileSpec profile;
    if (n["name"]) {
      ASSIGN_OR_RETURN(profile.name, ScalarString(n["name"], path + ".name"));
    }
    if (profile.name.empty()) return Err(path, "name is required");
    if (!names.insert(profile.name).second) {
      return Err(path, StrCat("duplicate profile name \"", profile.name, "\""));
    }
    if (n["plugins"]) {
      if (!n["plugins"].IsSequence()) return Err(path + ".plugins", "must be a list");
      for (size_t j = 0; j < n["plugins"].size(); ++j) {
        const YAML::Node& r = n["plugins"][j];
        std::string rpath = StrCat(path, ".plugins[", j, "]");
        RETURN_IF_ERROR(CheckKeys(r, rpath, {"pluginRef", "weight"}));
        ProfilePluginRef ref;
        if (!r["pluginRef"]) return Err(rpath, "pluginRef is required");
        ASSIGN_OR_RETURN(ref.plugin_ref, ScalarString(r["pluginRef"], rpath + ".pluginRef"));
        if (r["weight"]) {
          try {
            ref.weight = r["weight"].as<double>();
          } catch (const YAML::Exception&) {
            return Err(rpath + ".weight", "must be a number");
          }
          if (!std::isfinite(*ref.weight)) return Err(rpath + ".weight", "must be finite");
        }
        profile.plugins.push_back(std::move(ref));
      }
    }
    out.profiles.push_back(std::move(profile));
  }
  return absl::OkStatus();
}

absl::Status ParseDataLayer(const YAML::Node& n, EndpointPickerConfig& out) {
  RETURN_IF_ERROR(CheckKeys(n, "dataLayer", {"sources", "discovery"}));
  out.data_layer.present = true;
  if (n["sources"]) {
    out.data_layer.sources_present = true;
    if (!n["sources"].IsSequence()) return Err("dataLayer.sources", "must be a list");
    for (size_t i = 0; i < n["sources"].size(); ++i) {
      const YAML::Node& s = n["sources"][i];
      std::string path = StrCat("dataLayer.sources[", i, "]");
      RETURN_IF_ERROR(CheckKeys(s, path, {"pluginRef", "extractors"}));
      DataSourceSpec src;
      if (!s["pluginRef"]) return Err(path, "pluginRef is required");
      ASSIGN_OR_RETURN(src.plugin_ref, ScalarString(s["pluginRef"], path + ".pluginRef"));
      if (s["extractors"]) {
        if (!s["extractors"].IsSequence()) return Err(path + ".extractors", "must be a list");
        for (size_t j = 0; j < s["extractors"].size(); ++j) {
          ASSIGN_OR_RETURN(std::string ref,
                           PluginRefOf(s["extractors"][j], StrCat(path, ".extractors[", j, "]")));
          src.extractor_refs.push_back(std::move(ref));
        }
      }
      out.data_layer.sources.push_back(std::move(src));
    }
  }
  if (n["discovery"]) {
    ASSIGN_OR_RETURN(out.data_layer.discovery_ref,
                     PluginRefOf(n["discovery"], "dataLayer.discovery"));
  }
  return absl::OkStatus();
}

absl::Status CheckRef(const EndpointPickerConfig& c, const std::string& ref,
                      std::string_view path) {
  for (const auto& p : c.plugins) {
    if (p.name == ref) return absl::OkStatus();
  }
  return Err(path, StrCat("references undeclared plugin \"", ref, "\""));
}

absl::Status Validate(const EndpointPickerConfig& c) {
  for (size_t i = 0; i < c.profiles.size(); ++i) {
    for (size_t j = 0; j < c.profiles[i].plugins.size(); ++j) {
      RETURN_IF_ERROR(CheckRef(
          c, c.profiles[i].plugins[j].plugin_ref,
          StrCat("schedulingProfiles[", i, "] (", c.profiles[i].name, ").plugins[", j, "]")));
    }
  }
  for (size_t i = 0; i < c.data_layer.sources.size(); ++i) {
    const auto& s = c.data_layer.sources[i];
    RETURN_IF_ERROR(CheckRef(c, s.plugin_ref, StrCat("dataLayer.sources[", i, "]")));
    for (const auto& e : s.extractor_refs) {
      RETURN_IF_ERROR(CheckRef(c, e, StrCat("dataLayer.sources[", i, "].extractors")));
    }
  }
  if (c.data_layer.discovery_ref) {
    RETURN_IF_ERROR(CheckRef(c, *c.data_layer.discovery_ref, "dataLayer.discovery"));
  }
  if (c.saturation_detector_ref) {
    RETURN_IF_ERROR(CheckRef(c, *c.saturation_detector_ref, "saturationDetector"));
  }
  if (c.parser_ref) RETURN_IF_ERROR(CheckRef(c, *c.parser_ref, "parser"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EndpointPickerConfig> ParseEndpointPickerConfig(std::string_view yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("config is not valid YAML: ", e.what()));
  }
  EndpointPickerConfig out;
  if (!root || root.IsNull()) return absl::InvalidArgumentError("config is empty");
  RETURN_IF_ERROR(CheckKeys(root, "config",
                            {"apiVersion", "kind", "featureGates", "plugins", "schedulingProfiles",
                             "saturationDetector", "dataLayer", "flowControl", "parser"}));
  if (root["apiVersion"]) {
    ASSIGN_OR_RETURN(out.api_version, ScalarString(root["apiVersion"], "apiVersion"));
  }
  bool known_version = false;
  for (auto v : kApiVersions) known_version = known_version || v == out.api_version;
  if (!known_version) {
    return Err("apiVersion", StrCat("must be one of ", StrJoin(kApiVersions, ", "), "; got \"",
                                    out.api_version, "\""));
  }
  if (root["kind"]) {
    ASSIGN_OR_RETURN(out.kind, ScalarString(root["kind"], "kind"));
  }
  if (out.kind != "EndpointPickerConfig") {
    return Err("kind", StrCat("must be EndpointPickerConfig; got \"", out.kind, "\""));
  }
  if (root["featureGates"]) {
    if (!root["featureGates"].IsSequence()) return Err("featureGates", "must be a list");
    for (const auto& g : root["featureGates"]) {
      ASSIGN_OR_RETURN(std::string gate, ScalarString(g, "featureGates"));
      bool known = false;
      for (auto k : kFeatureGates) known = known || k == gate;
      if (!known) return Err("featureGates", StrCat("unknown feature gate \"", gate, "\""));
      out.feature_gates.push_back(std::move(gate));
    }
  }
  if (root["plugins"]) RETURN_IF_ERROR(ParsePlugins(root["plugins"], out));
  if (root["schedulingProfiles"]) RETURN_IF_ERROR(ParseProfiles(root["schedulingProfiles"], out));
  if (root["saturationDetector"]) {
    ASSIGN_OR_RETURN(out.saturation_detector_ref,
                     PluginRefOf(root["saturationDetector"], "saturationDetector"));
  }
  if (root["parser"]) {
    ASSIGN_OR_RETURN(out.parser_ref, PluginRefOf(root["parser"], "parser"));
  }
  if (root["dataLayer"]) RETURN_IF_ERROR(ParseDataLayer(root["dataLayer"], out));
  if (root["flowControl"]) out.flow_control = YAML::Clone(root["flowControl"]);
  RETURN_IF_ERROR(Validate(out));
  return out;
}

absl::StatusOr<EndpointPickerConfig> LoadEndpointPickerConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(StrCat("cannot read config file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto config = ParseEndpointPickerConfig(ss.str());
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        StrCat("config file ", path, ": ", config.status().message()));
  }
  return config;
}

Plugin* PluginSet::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Plugin* PluginSet::Add(std::unique_ptr<Plugin> plugin) {
  Plugin* raw = plugin.get();
  by_name_[raw->Name()] = raw;
  plugins_.push_back(std::move(plugin));
  return raw;
}

absl::StatusOr<std::unique_ptr<PluginSet>> InstantiatePlugins(const EndpointPickerConfig& config,
                                                              const PluginRegistry& registry) {
  auto set = std::make_unique<PluginSet>();
  for (const auto& spec : config.plugins) {
    ASSIGN_OR_RETURN(auto plugin, registry.Create(spec.type, spec.name, spec.parameters));
    set->Add(std::move(plugin));
  }
  return set;
}

}  // namespace epp::config
