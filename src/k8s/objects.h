// The Kubernetes objects epp reads, as typed data, and their decoding from the API server's
// JSON (simdjson DOM). Decoders read only the fields epp uses and reject wrong types with an
// InvalidArgument naming the field ("spec.targetPorts[1].number: ..."); unknown fields are
// ignored, as a Kubernetes client must.
#ifndef EPP_K8S_OBJECTS_H_
#define EPP_K8S_OBJECTS_H_

#include <simdjson.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "datastore/model_rewrites.h"

namespace epp::k8s {

inline constexpr std::string_view kPoolGroup = "inference.networking.k8s.io";
inline constexpr std::string_view kObjectiveGroup = "inference.networking.x-k8s.io";
inline constexpr std::string_view kActivePortsAnnotation = "llm-d.ai/active-ports";
inline constexpr std::string_view kLegacyActivePortsAnnotation =
    "inference.networking.k8s.io/active-ports";

struct ObjectMeta {
  std::string name;
  std::string ns;
  std::string resource_version;
  std::string uid;
  std::string creation_timestamp;  // RFC 3339, as sent (sorts chronologically)
  bool deleting = false;           // deletionTimestamp is set
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

struct Pod {
  ObjectMeta meta;
  std::string pod_ip;
  std::string phase;
  bool ready_condition = false;  // status.conditions[type=Ready].status == "True"
};

struct InferencePool {
  ObjectMeta meta;
  std::map<std::string, std::string> match_labels;  // spec.selector.matchLabels (AND)
  std::vector<int> target_ports;                    // spec.targetPorts[].number, in order
  std::string app_protocol = "http";                // spec.appProtocol
};

struct PoolRef {
  std::string group{kPoolGroup};
  std::string kind = "InferencePool";
  std::string name;
};

struct InferenceObjective {
  ObjectMeta meta;
  std::optional<int64_t> priority;  // unset = 0 for admission
  PoolRef pool_ref;
};

struct InferenceModelRewrite {
  ObjectMeta meta;
  PoolRef pool_ref;
  datastore::ModelRewrite rewrite;  // name = metadata.name; validated separately
};

// A `kind: Status` answer (errors, and the object of a watch ERROR event).
struct ApiStatus {
  int code = 0;
  std::string reason;
  std::string message;
};

absl::StatusOr<ObjectMeta> DecodeMeta(simdjson::dom::element object);
absl::StatusOr<Pod> DecodePod(simdjson::dom::element object);
absl::StatusOr<InferencePool> DecodeInferencePool(simdjson::dom::element object);
absl::StatusOr<InferenceObjective> DecodeInferenceObjective(simdjson::dom::element object);
absl::StatusOr<InferenceModelRewrite> DecodeInferenceModelRewrite(simdjson::dom::element object);
ApiStatus DecodeApiStatus(simdjson::dom::element object);
// Parses a Status body (e.g. of a 403); a body that is not one gives code 0 and the raw text
// (truncated) as message.
ApiStatus ParseApiStatus(std::string_view body);

// A pod counts as ready as the reference counts it: not being deleted, and its Ready condition
// true. An endpoint also needs an IP.
bool IsPodReady(const Pod& pod);
// The target ports a pod serves: those listed in its active-ports annotation (llm-d.ai/…, else
// the legacy inference.networking.k8s.io/… one) that are target ports; all of them when neither
// annotation is set.
std::vector<int> ActivePorts(const Pod& pod, const std::vector<int>& target_ports);
// AND of matchLabels; an empty selector matches nothing (the API requires at least one label).
bool SelectorMatches(const std::map<std::string, std::string>& match_labels,
                     const std::map<std::string, std::string>& labels);

}  // namespace epp::k8s

#endif  // EPP_K8S_OBJECTS_H_
