#include "k8s/kubernetes_mode.h"

#include "common/strings.h"

namespace epp::k8s {

absl::StatusOr<std::unique_ptr<KubernetesMode>> KubernetesMode::Create(
    std::shared_ptr<const RestConfig> config, KubernetesModeOptions options,
    datastore::EndpointWriter& endpoints, datastore::ModelRewriteWriter& rewrites,
    datastore::ObjectiveStore& objectives) {
  if (options.pool_name.empty()) return absl::InvalidArgumentError("--pool-name: required");
  if (options.pool_namespace.empty()) {
    return absl::InvalidArgumentError("--pool-namespace: required");
  }
  if (options.pool_group != kPoolGroup) {
    return absl::InvalidArgumentError(StrCat("--pool-group \"", options.pool_group, "\": only ",
                                             kPoolGroup, " (InferencePool v1) is supported"));
  }
  // Unusable TLS material is a configuration error at start, not a retry loop.
  if (absl::Status s = RestClient(config).status(); !s.ok()) return s;
  if (options.identity.empty()) options.identity = DefaultIdentity();
  options.lease.lease_namespace = options.pool_namespace;
  options.lease.lease_name = LeaseNameForPool(options.pool_namespace, options.pool_name);
  options.lease.identity = options.identity;
  return std::unique_ptr<KubernetesMode>(
      new KubernetesMode(std::move(config), std::move(options), endpoints, rewrites, objectives));
}

KubernetesMode::KubernetesMode(std::shared_ptr<const RestConfig> config,
                               KubernetesModeOptions options, datastore::EndpointWriter& endpoints,
                               datastore::ModelRewriteWriter& rewrites,
                               datastore::ObjectiveStore& objectives)
    : options_(std::move(options)),
      pool_reconciler_(options_.pool_name, endpoints),
      objective_reconciler_(options_.pool_name, options_.pool_group, objectives),
      rewrite_reconciler_(options_.pool_name, options_.pool_group, rewrites),
      pool_handler_(
          "inferencepools", &DecodeInferencePool,
          {[this](std::vector<InferencePool> v) { pool_reconciler_.ReplacePools(std::move(v)); },
           [this](InferencePool p) { pool_reconciler_.UpsertPool(std::move(p)); },
           [this](const ObjectMeta& m) { pool_reconciler_.RemovePool(m); }},
          TypedHandler<InferencePool>::BadUpdate::kKeepLast),
      pod_handler_("pods", &DecodePod,
                   {[this](std::vector<Pod> v) { pool_reconciler_.ReplacePods(std::move(v)); },
                    [this](Pod p) { pool_reconciler_.UpsertPod(std::move(p)); },
                    [this](const ObjectMeta& m) { pool_reconciler_.RemovePod(m); }}),
      objective_handler_(
          "inferenceobjectives", &DecodeInferenceObjective,
          {[this](std::vector<InferenceObjective> v) {
             objective_reconciler_.Replace(std::move(v));
           },
           [this](InferenceObjective o) { objective_reconciler_.Upsert(std::move(o)); },
           [this](const ObjectMeta& m) { objective_reconciler_.Remove(m); }}),
      rewrite_handler_(
          "inferencemodelrewrites", &DecodeInferenceModelRewrite,
          {[this](std::vector<InferenceModelRewrite> v) {
             rewrite_reconciler_.Replace(std::move(v));
           },
           [this](InferenceModelRewrite r) { rewrite_reconciler_.Upsert(std::move(r)); },
           [this](const ObjectMeta& m) { rewrite_reconciler_.Remove(m); }}) {
  const std::string& ns = options_.pool_namespace;
  auto make = [&](std::string resource, std::string path, std::string field_selector,
                  ReflectorHandler& handler) {
    ReflectorOptions o;
    o.resource = std::move(resource);
    o.collection_path = std::move(path);
    o.field_selector = std::move(field_selector);
    o.watch_timeout = options_.watch_timeout;
    return std::make_unique<Reflector>(config, std::move(o), handler);
  };
  pools_ =
      make("inferencepools", StrCat("/apis/", kPoolGroup, "/v1/namespaces/", ns, "/inferencepools"),
           StrCat("metadata.name=", options_.pool_name), pool_handler_);
  pods_ = make("pods", StrCat("/api/v1/namespaces/", ns, "/pods"), "", pod_handler_);
  objectives_ =
      make("inferenceobjectives",
           StrCat("/apis/", kObjectiveGroup, "/v1alpha2/namespaces/", ns, "/inferenceobjectives"),
           "", objective_handler_);
  rewrites_ = make(
      "inferencemodelrewrites",
      StrCat("/apis/", kObjectiveGroup, "/v1alpha2/namespaces/", ns, "/inferencemodelrewrites"), "",
      rewrite_handler_);
  if (options_.leader_election) {
    elector_ = std::make_unique<LeaderElector>(config, options_.lease);
  }
}

KubernetesMode::~KubernetesMode() { Stop(); }

void KubernetesMode::Start() {
  pools_->Start();
  pods_->Start();
  objectives_->Start();
  rewrites_->Start();
  if (elector_) elector_->Start();
}

void KubernetesMode::Stop() {
  // The elector first (it releases a held Lease); the watchers are all cancelled before any is
  // joined, so they wind down together.
  if (elector_) elector_->Stop();
  for (Reflector* r : {pools_.get(), pods_.get(), objectives_.get(), rewrites_.get()}) {
    if (r) r->Cancel();
  }
  for (Reflector* r : {pools_.get(), pods_.get(), objectives_.get(), rewrites_.get()}) {
    if (r) r->Stop();
  }
}

bool KubernetesMode::IsLeader() const { return !elector_ || elector_->IsLeader(); }

std::string KubernetesMode::DebugJson() const {
  std::string out = "{\"watchers\":[";
  bool first = true;
  for (const Reflector* r : {pools_.get(), pods_.get(), objectives_.get(), rewrites_.get()}) {
    ReflectorStats s = r->stats();
    if (!first) out += ",";
    first = false;
    StrAppend(&out, "{\"resource\":\"", r->resource(), "\",\"synced\":", r->synced(),
              ",\"lists\":", s.lists, ",\"watches\":", s.watches, ",\"events\":", s.events,
              ",\"relists_gone\":", s.relists_gone, ",\"last_error\":\"", JsonEscape(s.last_error),
              "\"}");
  }
  StrAppend(&out, "],\"leader\":", IsLeader(), "}");
  return out;
}

}  // namespace epp::k8s
