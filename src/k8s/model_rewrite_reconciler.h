// ModelRewriteReconciler: keeps the model-rewrite rules equal to the InferenceModelRewrites of
// the pool's namespace whose spec.poolRef names this pool. Precedence is the reference's: older
// objects first (creationTimestamp, then name). An invalid object is skipped with an error in
// the log (naming it and the field); the others still apply. Thread-safe.
#ifndef EPP_K8S_MODEL_REWRITE_RECONCILER_H_
#define EPP_K8S_MODEL_REWRITE_RECONCILER_H_

#include <map>
#include <string>
#include <vector>

#include "common/mutex.h"
#include "datastore/model_rewrites.h"
#include "k8s/objects.h"

namespace epp::k8s {

class ModelRewriteReconciler {
 public:
  ModelRewriteReconciler(std::string pool_name, std::string pool_group,
                         datastore::ModelRewriteWriter& writer);
  void Replace(std::vector<InferenceModelRewrite> rewrites);
  void Upsert(InferenceModelRewrite rewrite);
  void Remove(const ObjectMeta& meta);

 private:
  bool ForThisPool(const InferenceModelRewrite& r) const;
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string pool_name_;
  const std::string pool_group_;
  datastore::ModelRewriteWriter& writer_;
  Mutex mu_;
  std::map<std::string, InferenceModelRewrite> objects_ ABSL_GUARDED_BY(mu_);
};

}  // namespace epp::k8s

#endif  // EPP_K8S_MODEL_REWRITE_RECONCILER_H_
