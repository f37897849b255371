// ObjectiveReconciler: keeps the ObjectiveStore equal to the InferenceObjectives of the pool's
// namespace whose spec.poolRef names this pool (name, and group inference.networking.k8s.io),
// as the reference's objective reconciler caches them. Thread-safe.
#ifndef EPP_K8S_OBJECTIVE_RECONCILER_H_
#define EPP_K8S_OBJECTIVE_RECONCILER_H_

#include <map>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "datastore/objectives.h"
#include "k8s/objects.h"

namespace epp::k8s {

class ObjectiveReconciler {
 public:
  ObjectiveReconciler(std::string pool_name, std::string pool_group,
                      datastore::ObjectiveStore& store);
  void Replace(std::vector<InferenceObjective> objectives);
  void Upsert(InferenceObjective objective);
  void Remove(const ObjectMeta& meta);

 private:
  bool ForThisPool(const InferenceObjective& o) const;
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string pool_name_;
  const std::string pool_group_;
  datastore::ObjectiveStore& store_;
  Mutex mu_;
  std::map<std::string, int64_t> priorities_ ABSL_GUARDED_BY(mu_);
};

}  // namespace epp::k8s

#endif  // EPP_K8S_OBJECTIVE_RECONCILER_H_
