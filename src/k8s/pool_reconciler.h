// PoolReconciler: turns the InferencePool named by --pool-name and the Pods of its namespace
// into the datastore's endpoint set, as the reference's pool and pod reconcilers do:
//   - a Pod is an endpoint source when its labels match every spec.selector.matchLabels entry,
//     it is ready (Ready condition true, not being deleted) and has a podIP;
//   - it yields one endpoint per active target port, named "<pod>-rank-<i>" (i = the port's
//     index in spec.targetPorts), with the Pod's labels (the engine-type label among them);
//   - the pool going away (deleted, being deleted, or absent from a list) empties the datastore
//     and marks it not ready; the pool coming back (and the Pods having been listed) makes it ready
//     again.
// Thread-safe: the pool and pod watchers call it from their threads.
#ifndef EPP_K8S_POOL_RECONCILER_H_
#define EPP_K8S_POOL_RECONCILER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "datastore/datastore.h"
#include "k8s/objects.h"

namespace epp::k8s {

// The endpoints `pool` selects among `pods` (keyed by name), sorted by key.
std::vector<datastore::Endpoint> ComputeEndpoints(const InferencePool& pool,
                                                  const std::map<std::string, Pod>& pods);

class PoolReconciler {
 public:
  PoolReconciler(std::string pool_name, datastore::EndpointWriter& writer);

  // From the pool watch (field-selected to the one name; other names are ignored).
  void ReplacePools(std::vector<InferencePool> pools);
  void UpsertPool(InferencePool pool);
  void RemovePool(const ObjectMeta& meta);
  // From the pod watch.
  void ReplacePods(std::vector<Pod> pods);
  void UpsertPod(Pod pod);
  void RemovePod(const ObjectMeta& meta);

  // The pool as last seen, if present.
  std::optional<InferencePool> pool() const;

 private:
  void ReconcileLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string pool_name_;
  datastore::EndpointWriter& writer_;
  mutable Mutex mu_;
  std::optional<InferencePool> pool_ ABSL_GUARDED_BY(mu_);
  bool pools_listed_ ABSL_GUARDED_BY(mu_) = false;
  bool pods_listed_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Pod> pods_ ABSL_GUARDED_BY(mu_);
  // What was last written, to skip writes that change nothing.
  std::optional<std::vector<datastore::Endpoint>> written_ ABSL_GUARDED_BY(mu_);
  bool ready_written_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace epp::k8s

#endif  // EPP_K8S_POOL_RECONCILER_H_
