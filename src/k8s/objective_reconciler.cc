#include "k8s/objective_reconciler.h"

#include "common/logging.h"

namespace epp::k8s {

ObjectiveReconciler::ObjectiveReconciler(std::string pool_name, std::string pool_group,
                                         datastore::ObjectiveStore& store)
    : pool_name_(std::move(pool_name)), pool_group_(std::move(pool_group)), store_(store) {}

bool ObjectiveReconciler::ForThisPool(const InferenceObjective& o) const {
  return o.pool_ref.name == pool_name_ && o.pool_ref.group == pool_group_ &&
         o.pool_ref.kind == "InferencePool";
}

void ObjectiveReconciler::Replace(std::vector<InferenceObjective> objectives) {
  MutexLock lock(&mu_);
  priorities_.clear();
  for (const auto& o : objectives) {
    if (ForThisPool(o)) priorities_[o.meta.name] = o.priority.value_or(0);
  }
  PublishLocked();
}

void ObjectiveReconciler::Upsert(InferenceObjective objective) {
  MutexLock lock(&mu_);
  if (ForThisPool(objective)) {
    priorities_[objective.meta.name] = objective.priority.value_or(0);
  } else if (priorities_.erase(objective.meta.name) == 0) {
    return;  // another pool's objective, and it was never ours
  }
  PublishLocked();
}

void ObjectiveReconciler::Remove(const ObjectMeta& meta) {
  MutexLock lock(&mu_);
  if (priorities_.erase(meta.name) > 0) PublishLocked();
}

void ObjectiveReconciler::PublishLocked() {
  datastore::ObjectivePriorities next;
  for (const auto& [name, priority] : priorities_) next.emplace(name, priority);
  EPP_LOG_INFO("InferenceObjectives for pool {}: {}", pool_name_, next.size());
  store_.Replace(std::move(next));
}

}  // namespace epp::k8s
