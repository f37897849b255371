#include "k8s/model_rewrite_reconciler.h"

#include <algorithm>

#include "common/logging.h"
#include "common/strings.h"

namespace epp::k8s {

ModelRewriteReconciler::ModelRewriteReconciler(std::string pool_name, std::string pool_group,
                                               datastore::ModelRewriteWriter& writer)
    : pool_name_(std::move(pool_name)), pool_group_(std::move(pool_group)), writer_(writer) {}

bool ModelRewriteReconciler::ForThisPool(const InferenceModelRewrite& r) const {
  return r.pool_ref.name == pool_name_ && r.pool_ref.group == pool_group_ &&
         r.pool_ref.kind == "InferencePool";
}

void ModelRewriteReconciler::Replace(std::vector<InferenceModelRewrite> rewrites) {
  MutexLock lock(&mu_);
  objects_.clear();
  for (auto& r : rewrites) {
    if (ForThisPool(r)) {
      std::string name = r.meta.name;
      objects_.emplace(std::move(name), std::move(r));
    }
  }
  PublishLocked();
}

void ModelRewriteReconciler::Upsert(InferenceModelRewrite rewrite) {
  MutexLock lock(&mu_);
  if (ForThisPool(rewrite)) {
    std::string name = rewrite.meta.name;
    objects_[name] = std::move(rewrite);
  } else if (objects_.erase(rewrite.meta.name) == 0) {
    return;
  }
  PublishLocked();
}

void ModelRewriteReconciler::Remove(const ObjectMeta& meta) {
  MutexLock lock(&mu_);
  if (objects_.erase(meta.name) > 0) PublishLocked();
}

void ModelRewriteReconciler::PublishLocked() {
  std::vector<const InferenceModelRewrite*> ordered;
  for (const auto& [name, r] : objects_) ordered.push_back(&r);
  std::sort(ordered.begin(), ordered.end(), [](const auto* a, const auto* b) {
    if (a->meta.creation_timestamp != b->meta.creation_timestamp) {
      return a->meta.creation_timestamp < b->meta.creation_timestamp;
    }
    return a->meta.name < b->meta.name;
  });
  std::vector<datastore::ModelRewrite> rules;
  for (const auto* r : ordered) {
    if (absl::Status s = datastore::ValidateModelRewrite(r->rewrite); !s.ok()) {
      EPP_LOG_ERROR("InferenceModelRewrite {}/{} ignored: {}", r->meta.ns, r->meta.name,
                    SV(s.message()));
      continue;
    }
    rules.push_back(r->rewrite);
  }
  size_t n = rules.size();
  if (absl::Status s = writer_.ReplaceModelRewrites(std::move(rules)); !s.ok()) {
    EPP_LOG_ERROR("InferenceModelRewrites for pool {} not applied: {}", pool_name_,
                  SV(s.message()));
    return;
  }
  EPP_LOG_INFO("InferenceModelRewrites for pool {}: {}", pool_name_, n);
}

}  // namespace epp::k8s
