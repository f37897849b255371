// Model rewrite rules: the InferenceModelRewrite API (`inference.networking.x-k8s.io/v1alpha2`)
// as typed data, the immutable rule set a request consults, and the store that publishes it.
//
// Semantics (as the reference's rewrite store and director):
//   - A request's *incoming* model name is looked up. A rule whose `matches` name it exactly
//     beats a catch-all rule (one without `matches`). Among rules of the same kind, the one
//     from the earliest object wins (the reference: oldest creationTimestamp; file discovery:
//     file order); within one object, the first rule in list order.
//   - The chosen rule's target is picked at random, weighted by `weight` (weight/sum), or
//     uniformly when no target has a weight.
#ifndef EPP_DATASTORE_MODEL_REWRITES_H_
#define EPP_DATASTORE_MODEL_REWRITES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "common/mutex.h"
#include "common/published.h"

namespace epp::datastore {

inline constexpr uint32_t kMaxModelRewriteWeight = 1'000'000;

struct ModelRewriteTarget {
  std::string model;    // `modelRewrite`: the name the request is sent with
  uint32_t weight = 0;  // 0 = not set
};

struct ModelRewriteRule {
  std::vector<std::string> matches;  // exact model names (OR); empty = every model
  std::vector<ModelRewriteTarget> targets;
};

// One InferenceModelRewrite object. The pool reference is not kept: every object given to a
// store applies to the pool this picker serves.
struct ModelRewrite {
  std::string name;
  std::vector<ModelRewriteRule> rules;
};

// Checks what the API's schema requires: a name; at least one rule; every match value
// non-empty; at least one target per rule, each with a non-empty model; weights in
// 1..kMaxModelRewriteWeight, set on every target of a rule or on none. InvalidArgument names
// the field relative to the object, e.g. "spec.rules[1].targets[0].weight: ...".
absl::Status ValidateModelRewrite(const ModelRewrite& rewrite);

// What Find() returns: the rule that applies and the object it comes from. Both point into the
// ModelRewriteSet searched: valid only while the caller holds that set.
struct ModelRewriteMatch {
  const ModelRewrite* rewrite = nullptr;  // null: no rule applies
  const ModelRewriteRule* rule = nullptr;
  size_t rule_index = 0;
  explicit operator bool() const { return rule != nullptr; }
};

// An immutable set of valid rewrite objects, indexed for lookup. Thread-safe (const).
class ModelRewriteSet {
 public:
  ModelRewriteSet() = default;
  // `rewrites` in precedence order (the first wins ties) and valid (ValidateModelRewrite).
  explicit ModelRewriteSet(std::vector<ModelRewrite> rewrites);
  ModelRewriteSet(const ModelRewriteSet&) = delete;
  ModelRewriteSet& operator=(const ModelRewriteSet&) = delete;

  // The rule for `incoming_model`: an exact match from the earliest object, else the
  // earliest catch-all rule, else none. No allocation.
  ModelRewriteMatch Find(std::string_view incoming_model) const;

  const std::vector<ModelRewrite>& rewrites() const { return rewrites_; }
  bool empty() const { return rewrites_.empty(); }

 private:
  struct Ref {
    uint32_t rewrite = 0;
    uint32_t rule = 0;
  };
  ModelRewriteMatch Resolve(Ref ref) const;

  std::vector<ModelRewrite> rewrites_;
  absl::flat_hash_map<std::string, Ref> exact_;
  bool has_catch_all_ = false;
  Ref catch_all_;
};

// Picks one of `rule`'s targets (which must not be empty) from `random`, a uniformly
// distributed 64-bit value: target i with probability weight_i / sum, or 1/n when no weight is
// set. Deterministic for a given `random`.
const std::string& PickModelRewriteTarget(const ModelRewriteRule& rule, uint64_t random);

// What producers of rewrite rules (file discovery; later the Kubernetes reconciler) call.
// Implementations are thread-safe.
class ModelRewriteWriter {
 public:
  virtual ~ModelRewriteWriter() = default;
  // Replaces every rule with `rewrites`, given in precedence order. All or nothing: when an
  // object is invalid (ValidateModelRewrite) or two share a name, the previous rules stay and
  // InvalidArgument names the object and the field.
  virtual absl::Status ReplaceModelRewrites(std::vector<ModelRewrite> rewrites) = 0;
};

// Publishes the current ModelRewriteSet. Readers never lock (beyond Published's pointer copy);
// writers serialize on a mutex.
class ModelRewriteStore : public ModelRewriteWriter {
 public:
  ModelRewriteStore() = default;

  // Never null; empty until rules are written.
  std::shared_ptr<const ModelRewriteSet> Get() const { return set_.Load(); }

  absl::Status ReplaceModelRewrites(std::vector<ModelRewrite> rewrites) override;

 private:
  Mutex mu_;  // serializes writers, so the version published last is the one written last
  Published<ModelRewriteSet> set_;
};

}  // namespace epp::datastore

#endif  // EPP_DATASTORE_MODEL_REWRITES_H_
