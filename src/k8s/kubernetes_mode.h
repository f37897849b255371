// KubernetesMode: epp's Kubernetes integration in one object. It watches, in the pool's
// namespace, the InferencePool named by --pool-name (inference.networking.k8s.io/v1), the Pods,
// and the InferenceObjectives and InferenceModelRewrites (inference.networking.x-k8s.io/v1alpha2),
// and feeds the datastore, the objective store and the model-rewrite store through their writer
// interfaces. With leader election it also runs the LeaderElector.
//
// RBAC it needs (deploy/rbac): get/list/watch pods, inferencepools, inferenceobjectives and
// inferencemodelrewrites in the namespace; get/create/update leases with leader election.
#ifndef EPP_K8S_KUBERNETES_MODE_H_
#define EPP_K8S_KUBERNETES_MODE_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "datastore/datastore.h"
#include "datastore/model_rewrites.h"
#include "datastore/objectives.h"
#include "k8s/leader_elector.h"
#include "k8s/model_rewrite_reconciler.h"
#include "k8s/objective_reconciler.h"
#include "k8s/pool_reconciler.h"
#include "k8s/reflector.h"

namespace epp::k8s {

struct KubernetesModeOptions {
  std::string pool_name;
  std::string pool_namespace;
  std::string pool_group{kPoolGroup};
  bool leader_election = false;
  std::string identity;  // leader-election identity; default DefaultIdentity()
  std::chrono::seconds watch_timeout{300};
  LeaderElectionOptions lease;  // timings; namespace/name/identity filled in by Create
};

class KubernetesMode {
 public:
  // InvalidArgument for an unsupported --pool-group or an empty pool name.
  static absl::StatusOr<std::unique_ptr<KubernetesMode>> Create(
      std::shared_ptr<const RestConfig> config, KubernetesModeOptions options,
      datastore::EndpointWriter& endpoints, datastore::ModelRewriteWriter& rewrites,
      datastore::ObjectiveStore& objectives);
  ~KubernetesMode();

  // Starts every watcher (and the elector); returns at once.
  void Start();
  void Stop();

  // True without leader election.
  bool IsLeader() const;
  // Per-watcher counters, for /debug and tests.
  std::string DebugJson() const;

 private:
  KubernetesMode(std::shared_ptr<const RestConfig> config, KubernetesModeOptions options,
                 datastore::EndpointWriter& endpoints, datastore::ModelRewriteWriter& rewrites,
                 datastore::ObjectiveStore& objectives);

  const KubernetesModeOptions options_;
  PoolReconciler pool_reconciler_;
  ObjectiveReconciler objective_reconciler_;
  ModelRewriteReconciler rewrite_reconciler_;
  TypedHandler<InferencePool> pool_handler_;
  TypedHandler<Pod> pod_handler_;
  TypedHandler<InferenceObjective> objective_handler_;
  TypedHandler<InferenceModelRewrite> rewrite_handler_;
  std::unique_ptr<Reflector> pools_;
  std::unique_ptr<Reflector> pods_;
  std::unique_ptr<Reflector> objectives_;
  std::unique_ptr<Reflector> rewrites_;
  std::unique_ptr<LeaderElector> elector_;
};

}  // namespace epp::k8s

#endif  // EPP_K8S_KUBERNETES_MODE_H_
