// InferenceObjective priorities by objective name, as the request header
// `x-gateway-inference-objective` names them. Written by the Kubernetes reconciler, read on the
// hot path without locking.
#ifndef EPP_DATASTORE_OBJECTIVES_H_
#define EPP_DATASTORE_OBJECTIVES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "common/published.h"

namespace epp::datastore {

// Objective name → priority (an unset priority is stored as 0, as the reference treats it).
using ObjectivePriorities = absl::flat_hash_map<std::string, int64_t>;

class ObjectiveStore {
 public:
  ObjectiveStore() = default;

  // The priority of the objective `name`; 0 when it is unknown or `name` is empty.
  int64_t Priority(std::string_view name) const {
    if (name.empty()) return 0;
    auto set = set_.Load();
    auto it = set->find(absl::string_view(name.data(), name.size()));
    return it == set->end() ? 0 : it->second;
  }
  std::shared_ptr<const ObjectivePriorities> Get() const { return set_.Load(); }
  void Replace(ObjectivePriorities priorities) {
    set_.Store(std::make_shared<const ObjectivePriorities>(std::move(priorities)));
  }

 private:
  Published<ObjectivePriorities> set_;
};

}  // namespace epp::datastore

#endif  // EPP_DATASTORE_OBJECTIVES_H_
