#include "datastore/model_rewrites.h"

#include <set>

#include "common/strings.h"

namespace epp::datastore {
namespace {

absl::Status Invalid(std::string_view field, std::string_view why) {
  return absl::InvalidArgumentError(StrCat(field, ": ", why));
}

}  // namespace

absl::Status ValidateModelRewrite(const ModelRewrite& rewrite) {
  if (rewrite.name.empty()) return Invalid("name", "is required");
  if (rewrite.rules.empty()) return Invalid("spec.rules", "at least one rule is required");
  for (size_t r = 0; r < rewrite.rules.size(); ++r) {
    const ModelRewriteRule& rule = rewrite.rules[r];
    const std::string at = StrCat("spec.rules[", r, "]");
    for (size_t m = 0; m < rule.matches.size(); ++m) {
      if (rule.matches[m].empty()) {
        return Invalid(StrCat(at, ".matches[", m, "].model.value"), "must not be empty");
      }
    }
    if (rule.targets.empty()) return Invalid(StrCat(at, ".targets"), "at least one is required");
    size_t weighted = 0;
    for (size_t t = 0; t < rule.targets.size(); ++t) {
      const ModelRewriteTarget& target = rule.targets[t];
      if (target.model.empty()) {
        return Invalid(StrCat(at, ".targets[", t, "].modelRewrite"), "is required");
      }
      if (target.weight > kMaxModelRewriteWeight) {
        return Invalid(StrCat(at, ".targets[", t, "].weight"),
                       StrCat(target.weight, " is not in 1..", kMaxModelRewriteWeight));
      }
      if (target.weight > 0) ++weighted;
    }
    if (weighted != 0 && weighted != rule.targets.size()) {
      return Invalid(StrCat(at, ".targets"),
                     StrCat("weight is set on ", weighted, " of ", rule.targets.size(),
                            " targets; set it on every target or on none"));
    }
  }
  return absl::OkStatus();
}

ModelRewriteSet::ModelRewriteSet(std::vector<ModelRewrite> rewrites)
    : rewrites_(std::move(rewrites)) {
  for (uint32_t o = 0; o < rewrites_.size(); ++o) {
    const auto& rules = rewrites_[o].rules;
    for (uint32_t r = 0; r < rules.size(); ++r) {
      if (rules[r].matches.empty()) {
        if (!has_catch_all_) {
          has_catch_all_ = true;
          catch_all_ = Ref{o, r};
        }
        continue;
      }
      // The first object and rule to name a model keep it.
      for (const std::string& model : rules[r].matches) exact_.try_emplace(model, Ref{o, r});
    }
  }
}

ModelRewriteMatch ModelRewriteSet::Resolve(Ref ref) const {
  const ModelRewrite& rw = rewrites_[ref.rewrite];
  return ModelRewriteMatch{&rw, &rw.rules[ref.rule], ref.rule};
}

ModelRewriteMatch ModelRewriteSet::Find(std::string_view incoming_model) const {
  if (rewrites_.empty()) return {};
  auto it = exact_.find(AV(incoming_model));
  if (it != exact_.end()) return Resolve(it->second);
  if (has_catch_all_) return Resolve(catch_all_);
  return {};
}

const std::string& PickModelRewriteTarget(const ModelRewriteRule& rule, uint64_t random) {
  const auto& targets = rule.targets;
  uint64_t total = 0;
  for (const auto& t : targets) total += t.weight;
  if (total == 0) return targets[random % targets.size()].model;
  // The modulo bias is below 2^-40 for any total the validation allows.
  uint64_t point = random % total;
  for (const auto& t : targets) {
    if (point < t.weight) return t.model;
    point -= t.weight;
  }
  return targets.back().model;  // unreachable: point < total
}

absl::Status ModelRewriteStore::ReplaceModelRewrites(std::vector<ModelRewrite> rewrites) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < rewrites.size(); ++i) {
    const ModelRewrite& rw = rewrites[i];
    if (absl::Status s = ValidateModelRewrite(rw); !s.ok()) {
      return absl::InvalidArgumentError(
          StrCat("model rewrite ", i, " (\"", rw.name, "\"): ", s.message()));
    }
    if (!names.insert(rw.name).second) {
      return absl::InvalidArgumentError(
          StrCat("model rewrite ", i, ": name \"", rw.name, "\" is used twice"));
    }
  }
  auto set = std::make_shared<const ModelRewriteSet>(std::move(rewrites));
  MutexLock lock(&mu_);
  set_.Store(std::move(set));
  return absl::OkStatus();
}

}  // namespace epp::datastore
