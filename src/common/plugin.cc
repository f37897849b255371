#include "common/plugin.h"

#include <algorithm>
#include <optional>

#include "common/strings.h"

namespace epp {

void PluginRegistry::Register(std::string type, PluginFactory factory) {
  factories_[std::move(type)] = std::move(factory);
}

bool PluginRegistry::Has(std::string_view type) const {
  return factories_.find(type) != factories_.end();
}

absl::StatusOr<std::unique_ptr<Plugin>> PluginRegistry::Create(const std::string& type,
                                                               const std::string& name,
                                                               const YAML::Node& parameters) const {
  auto it = factories_.find(type);
  if (it == factories_.end()) {
    return absl::InvalidArgumentError(
        StrCat("plugin \"", name, "\": unknown plugin type \"", type, "\""));
  }
  auto plugin = it->second(name, parameters);
  if (!plugin.ok()) {
    return absl::Status(plugin.status().code(),
                        StrCat("plugin \"", name, "\" (", type, "): ", plugin.status().message()));
  }
  return plugin;
}

std::vector<std::string> PluginRegistry::Types() const {
  std::vector<std::string> out;
  for (const auto& [type, f] : factories_) out.push_back(type);
  return out;
}

ParamReader::ParamReader(const YAML::Node& params) : params_(params) {
  if (params_ && !params_.IsNull() && !params_.IsMap()) error_ = "parameters must be a map";
}

std::optional<YAML::Node> ParamReader::Lookup(const std::string& key) {
  seen_.push_back(key);
  if (!error_.empty() || !params_ || !params_.IsMap()) return std::nullopt;
  YAML::Node n = params_[key];
  if (!n || n.IsNull()) return std::nullopt;
  return n;
}

template <typename T>
T ParamReader::Get(const std::string& key, T default_value, std::string_view what) {
  auto n = Lookup(key);
  if (!n) return default_value;
  try {
    return n->as<T>();
  } catch (const YAML::Exception&) {
    if (error_.empty()) error_ = StrCat("parameter \"", key, "\" must be ", what);
    return default_value;
  }
}

int64_t ParamReader::Int(const std::string& key, int64_t default_value) {
  return Get<int64_t>(key, default_value, "an integer");
}

bool ParamReader::Bool(const std::string& key, bool default_value) {
  return Get<bool>(key, default_value, "a boolean");
}

double ParamReader::Double(const std::string& key, double default_value) {
  return Get<double>(key, default_value, "a number");
}

std::string ParamReader::String(const std::string& key, const std::string& default_value) {
  auto n = Lookup(key);
  if (!n) return default_value;
  if (!n->IsScalar()) {
    if (error_.empty()) error_ = StrCat("parameter \"", key, "\" must be a string");
    return default_value;
  }
  return n->Scalar();
}

YAML::Node ParamReader::Node(const std::string& key) {
  auto n = Lookup(key);
  return n ? *n : YAML::Node();
}

absl::Status ParamReader::Finish() {
  if (error_.empty() && params_ && params_.IsMap()) {
    for (const auto& kv : params_) {
      std::string key = kv.first.as<std::string>();
      if (std::find(seen_.begin(), seen_.end(), key) == seen_.end()) {
        error_ = StrCat("unknown parameter \"", key, "\"");
        break;
      }
    }
  }
  if (error_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(error_);
}

}  // namespace epp
