#include "k8s/objects.h"

#include <algorithm>
#include <set>

#include "common/status_macros.h"
#include "common/strings.h"

namespace epp::k8s {
namespace {

namespace dom = simdjson::dom;

absl::Status TypeError(std::string_view path, std::string_view want) {
  return absl::InvalidArgumentError(StrCat(path, ": must be ", want));
}

// The member `key` of `o`, or nullopt when absent or null.
std::optional<dom::element> Member(dom::object o, std::string_view key) {
  dom::element e;
  if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  return e;
}

absl::StatusOr<dom::object> AsObject(dom::element e, std::string_view path) {
  dom::object o;
  if (e.get(o) != simdjson::SUCCESS) return TypeError(path, "an object");
  return o;
}

// An optional object member: absent/null gives an empty object.
absl::StatusOr<std::optional<dom::object>> OptObject(dom::object o, std::string_view key,
                                                     std::string_view path) {
  auto e = Member(o, key);
  if (!e) return std::optional<dom::object>();
  dom::object out;
  if (e->get(out) != simdjson::SUCCESS) return TypeError(path, "an object");
  return std::optional<dom::object>(out);
}

absl::StatusOr<std::string> OptString(dom::object o, std::string_view key, std::string_view path) {
  auto e = Member(o, key);
  if (!e) return std::string();
  std::string_view s;
  if (e->get(s) != simdjson::SUCCESS) return TypeError(path, "a string");
  return std::string(s);
}

absl::StatusOr<std::optional<dom::array>> OptArray(dom::object o, std::string_view key,
                                                   std::string_view path) {
  auto e = Member(o, key);
  if (!e) return std::optional<dom::array>();
  dom::array a;
  if (e->get(a) != simdjson::SUCCESS) return TypeError(path, "an array");
  return std::optional<dom::array>(a);
}

absl::StatusOr<std::optional<int64_t>> OptInt(dom::object o, std::string_view key,
                                              std::string_view path) {
  auto e = Member(o, key);
  if (!e) return std::optional<int64_t>();
  int64_t v = 0;
  if (e->get(v) != simdjson::SUCCESS) return TypeError(path, "an integer");
  return std::optional<int64_t>(v);
}

absl::StatusOr<std::map<std::string, std::string>> StringMap(dom::object o, std::string_view key,
                                                             std::string_view path) {
  std::map<std::string, std::string> out;
  ASSIGN_OR_RETURN(auto m, OptObject(o, key, path));
  if (!m) return out;
  for (auto field : *m) {
    std::string_view v;
    if (field.value.get(v) != simdjson::SUCCESS) {
      return TypeError(StrCat(path, ".", field.key), "a string");
    }
    out.emplace(std::string(field.key), std::string(v));
  }
  return out;
}

absl::StatusOr<dom::object> Spec(dom::object o) {
  auto spec = Member(o, "spec");
  if (!spec) return absl::InvalidArgumentError("spec: required");
  return AsObject(*spec, "spec");
}

absl::StatusOr<PoolRef> DecodePoolRef(dom::object spec) {
  ASSIGN_OR_RETURN(auto ref, OptObject(spec, "poolRef", "spec.poolRef"));
  if (!ref) return absl::InvalidArgumentError("spec.poolRef: required");
  PoolRef out;
  ASSIGN_OR_RETURN(out.name, OptString(*ref, "name", "spec.poolRef.name"));
  if (out.name.empty()) return absl::InvalidArgumentError("spec.poolRef.name: required");
  ASSIGN_OR_RETURN(std::string group, OptString(*ref, "group", "spec.poolRef.group"));
  if (!group.empty()) out.group = group;
  ASSIGN_OR_RETURN(std::string kind, OptString(*ref, "kind", "spec.poolRef.kind"));
  if (!kind.empty()) out.kind = kind;
  return out;
}

}  // namespace

absl::StatusOr<ObjectMeta> DecodeMeta(dom::element object) {
  ASSIGN_OR_RETURN(dom::object o, AsObject(object, "object"));
  ASSIGN_OR_RETURN(auto m, OptObject(o, "metadata", "metadata"));
  if (!m) return absl::InvalidArgumentError("metadata: required");
  ObjectMeta meta;
  ASSIGN_OR_RETURN(meta.name, OptString(*m, "name", "metadata.name"));
  ASSIGN_OR_RETURN(meta.ns, OptString(*m, "namespace", "metadata.namespace"));
  ASSIGN_OR_RETURN(meta.resource_version,
                   OptString(*m, "resourceVersion", "metadata.resourceVersion"));
  ASSIGN_OR_RETURN(meta.uid, OptString(*m, "uid", "metadata.uid"));
  ASSIGN_OR_RETURN(meta.creation_timestamp,
                   OptString(*m, "creationTimestamp", "metadata.creationTimestamp"));
  ASSIGN_OR_RETURN(std::string deletion,
                   OptString(*m, "deletionTimestamp", "metadata.deletionTimestamp"));
  meta.deleting = !deletion.empty();
  ASSIGN_OR_RETURN(meta.labels, StringMap(*m, "labels", "metadata.labels"));
  ASSIGN_OR_RETURN(meta.annotations, StringMap(*m, "annotations", "metadata.annotations"));
  return meta;
}

absl::StatusOr<Pod> DecodePod(dom::element object) {
  Pod pod;
  ASSIGN_OR_RETURN(pod.meta, DecodeMeta(object));
  ASSIGN_OR_RETURN(dom::object o, AsObject(object, "object"));
  ASSIGN_OR_RETURN(auto status, OptObject(o, "status", "status"));
  if (!status) return pod;
  ASSIGN_OR_RETURN(pod.pod_ip, OptString(*status, "podIP", "status.podIP"));
  ASSIGN_OR_RETURN(pod.phase, OptString(*status, "phase", "status.phase"));
  ASSIGN_OR_RETURN(auto conditions, OptArray(*status, "conditions", "status.conditions"));
  if (conditions) {
    size_t i = 0;
    for (dom::element c : *conditions) {
      std::string path = StrCat("status.conditions[", i++, "]");
      ASSIGN_OR_RETURN(dom::object co, AsObject(c, path));
      ASSIGN_OR_RETURN(std::string type, OptString(co, "type", path + ".type"));
      if (type != "Ready") continue;
      ASSIGN_OR_RETURN(std::string value, OptString(co, "status", path + ".status"));
      pod.ready_condition = value == "True";
      break;  // the first Ready condition decides, as the reference's loop does
    }
  }
  return pod;
}

absl::StatusOr<InferencePool> DecodeInferencePool(dom::element object) {
  InferencePool pool;
  ASSIGN_OR_RETURN(pool.meta, DecodeMeta(object));
  ASSIGN_OR_RETURN(dom::object o, AsObject(object, "object"));
  ASSIGN_OR_RETURN(dom::object spec, Spec(o));
  ASSIGN_OR_RETURN(auto selector, OptObject(spec, "selector", "spec.selector"));
  if (!selector) return absl::InvalidArgumentError("spec.selector: required");
  ASSIGN_OR_RETURN(pool.match_labels,
                   StringMap(*selector, "matchLabels", "spec.selector.matchLabels"));
  if (pool.match_labels.empty()) {
    return absl::InvalidArgumentError("spec.selector.matchLabels: at least one label required");
  }
  ASSIGN_OR_RETURN(auto ports, OptArray(spec, "targetPorts", "spec.targetPorts"));
  if (!ports) return absl::InvalidArgumentError("spec.targetPorts: required");
  size_t i = 0;
  for (dom::element p : *ports) {
    std::string path = StrCat("spec.targetPorts[", i++, "]");
    ASSIGN_OR_RETURN(dom::object po, AsObject(p, path));
    ASSIGN_OR_RETURN(auto number, OptInt(po, "number", path + ".number"));
    if (!number || *number < 1 || *number > 65535) {
      return absl::InvalidArgumentError(StrCat(path, ".number: must be 1..65535"));
    }
    if (std::find(pool.target_ports.begin(), pool.target_ports.end(), *number) !=
        pool.target_ports.end()) {
      return absl::InvalidArgumentError(StrCat(path, ".number: port number must be unique"));
    }
    pool.target_ports.push_back(static_cast<int>(*number));
  }
  if (pool.target_ports.empty() || pool.target_ports.size() > 8) {
    return absl::InvalidArgumentError("spec.targetPorts: must have 1 to 8 entries");
  }
  ASSIGN_OR_RETURN(std::string proto, OptString(spec, "appProtocol", "spec.appProtocol"));
  if (!proto.empty()) pool.app_protocol = proto;
  return pool;
}

absl::StatusOr<InferenceObjective> DecodeInferenceObjective(dom::element object) {
  InferenceObjective obj;
  ASSIGN_OR_RETURN(obj.meta, DecodeMeta(object));
  ASSIGN_OR_RETURN(dom::object o, AsObject(object, "object"));
  ASSIGN_OR_RETURN(dom::object spec, Spec(o));
  ASSIGN_OR_RETURN(obj.priority, OptInt(spec, "priority", "spec.priority"));
  ASSIGN_OR_RETURN(obj.pool_ref, DecodePoolRef(spec));
  return obj;
}

absl::StatusOr<InferenceModelRewrite> DecodeInferenceModelRewrite(dom::element object) {
  InferenceModelRewrite obj;
  ASSIGN_OR_RETURN(obj.meta, DecodeMeta(object));
  obj.rewrite.name = obj.meta.name;
  ASSIGN_OR_RETURN(dom::object o, AsObject(object, "object"));
  ASSIGN_OR_RETURN(dom::object spec, Spec(o));
  ASSIGN_OR_RETURN(obj.pool_ref, DecodePoolRef(spec));
  ASSIGN_OR_RETURN(auto rules, OptArray(spec, "rules", "spec.rules"));
  if (!rules) return absl::InvalidArgumentError("spec.rules: required");
  size_t r = 0;
  for (dom::element re : *rules) {
    std::string rpath = StrCat("spec.rules[", r++, "]");
    ASSIGN_OR_RETURN(dom::object ro, AsObject(re, rpath));
    datastore::ModelRewriteRule rule;
    ASSIGN_OR_RETURN(auto matches, OptArray(ro, "matches", rpath + ".matches"));
    if (matches) {
      size_t m = 0;
      for (dom::element me : *matches) {
        std::string mpath = StrCat(rpath, ".matches[", m++, "]");
        ASSIGN_OR_RETURN(dom::object mo, AsObject(me, mpath));
        ASSIGN_OR_RETURN(auto model, OptObject(mo, "model", mpath + ".model"));
        if (!model) return absl::InvalidArgumentError(StrCat(mpath, ".model: required"));
        ASSIGN_OR_RETURN(std::string type, OptString(*model, "type", mpath + ".model.type"));
        if (!type.empty() && type != "Exact") {
          return absl::InvalidArgumentError(
              StrCat(mpath, ".model.type: \"", type, "\" is not supported (only Exact)"));
        }
        ASSIGN_OR_RETURN(std::string value, OptString(*model, "value", mpath + ".model.value"));
        rule.matches.push_back(std::move(value));
      }
    }
    ASSIGN_OR_RETURN(auto targets, OptArray(ro, "targets", rpath + ".targets"));
    if (targets) {
      size_t t = 0;
      for (dom::element te : *targets) {
        std::string tpath = StrCat(rpath, ".targets[", t++, "]");
        ASSIGN_OR_RETURN(dom::object to, AsObject(te, tpath));
        datastore::ModelRewriteTarget target;
        ASSIGN_OR_RETURN(target.model, OptString(to, "modelRewrite", tpath + ".modelRewrite"));
        ASSIGN_OR_RETURN(auto weight, OptInt(to, "weight", tpath + ".weight"));
        if (weight) {
          if (*weight < 1 || *weight > datastore::kMaxModelRewriteWeight) {
            return absl::InvalidArgumentError(
                StrCat(tpath, ".weight: must be 1..", datastore::kMaxModelRewriteWeight));
          }
          target.weight = static_cast<uint32_t>(*weight);
        }
        rule.targets.push_back(std::move(target));
      }
    }
    obj.rewrite.rules.push_back(std::move(rule));
  }
  return obj;
}

ApiStatus DecodeApiStatus(dom::element object) {
  ApiStatus out;
  dom::object o;
  if (object.get(o) != simdjson::SUCCESS) return out;
  if (auto code = OptInt(o, "code", "code"); code.ok() && code->has_value()) {
    out.code = static_cast<int>(**code);
  }
  if (auto reason = OptString(o, "reason", "reason"); reason.ok()) out.reason = *reason;
  if (auto message = OptString(o, "message", "message"); message.ok()) out.message = *message;
  return out;
}

ApiStatus ParseApiStatus(std::string_view body) {
  dom::parser parser;
  dom::element e;
  if (parser.parse(body.data(), body.size()).get(e) == simdjson::SUCCESS) {
    ApiStatus s = DecodeApiStatus(e);
    if (s.code != 0 || !s.message.empty()) return s;
  }
  ApiStatus raw;
  raw.message = std::string(body.substr(0, 512));
  return raw;
}

bool IsPodReady(const Pod& pod) { return !pod.meta.deleting && pod.ready_condition; }

std::vector<int> ActivePorts(const Pod& pod, const std::vector<int>& target_ports) {
  auto it = pod.meta.annotations.find(std::string(kActivePortsAnnotation));
  if (it == pod.meta.annotations.end()) {
    it = pod.meta.annotations.find(std::string(kLegacyActivePortsAnnotation));
    if (it == pod.meta.annotations.end()) return target_ports;
  }
  std::set<int> listed;
  for (std::string_view item : Split(it->second, ',')) {
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    // Leading digits only, as the reference's Sscanf("%d") reads them ("8000abc" is 8000).
    int value = 0;
    size_t digits = 0;
    while (digits < item.size() && digits < 6 && item[digits] >= '0' && item[digits] <= '9') {
      value = value * 10 + (item[digits] - '0');
      ++digits;
    }
    if (digits > 0 && value > 0) listed.insert(value);
  }
  std::vector<int> out;
  for (int p : target_ports) {
    if (listed.count(p)) out.push_back(p);
  }
  return out;
}

bool SelectorMatches(const std::map<std::string, std::string>& match_labels,
                     const std::map<std::string, std::string>& labels) {
  if (match_labels.empty()) return false;
  for (const auto& [k, v] : match_labels) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

}  // namespace epp::k8s
