#include "k8s/pool_reconciler.h"

#include <algorithm>

#include "common/logging.h"
#include "common/strings.h"

namespace epp::k8s {

std::vector<datastore::Endpoint> ComputeEndpoints(const InferencePool& pool,
                                                  const std::map<std::string, Pod>& pods) {
  std::vector<datastore::Endpoint> out;
  for (const auto& [name, pod] : pods) {
    if (!IsPodReady(pod) || pod.pod_ip.empty()) continue;
    if (!SelectorMatches(pool.match_labels, pod.meta.labels)) continue;
    std::vector<int> active = ActivePorts(pod, pool.target_ports);
    for (size_t i = 0; i < pool.target_ports.size(); ++i) {
      int port = pool.target_ports[i];
      if (std::find(active.begin(), active.end(), port) == active.end()) continue;
      out.push_back(datastore::MakeEndpoint(StrCat(pod.meta.name, "-rank-", i), pod.meta.ns,
                                            pod.pod_ip, static_cast<uint16_t>(port),
                                            pod.meta.labels));
    }
  }
  std::sort(out.begin(), out.end(), [](const datastore::Endpoint& a, const datastore::Endpoint& b) {
    return a.Key() < b.Key();
  });
  return out;
}

PoolReconciler::PoolReconciler(std::string pool_name, datastore::EndpointWriter& writer)
    : pool_name_(std::move(pool_name)), writer_(writer) {}

void PoolReconciler::ReplacePools(std::vector<InferencePool> pools) {
  MutexLock lock(&mu_);
  pools_listed_ = true;
  pool_.reset();
  for (auto& p : pools) {
    if (p.meta.name == pool_name_ && !p.meta.deleting) pool_ = std::move(p);
  }
  ReconcileLocked();
}

void PoolReconciler::UpsertPool(InferencePool pool) {
  if (pool.meta.name != pool_name_) return;
  MutexLock lock(&mu_);
  if (pool.meta.deleting) {
    pool_.reset();  // being deleted (finalizers pending): gone for routing, as the reference
  } else {
    pool_ = std::move(pool);
  }
  ReconcileLocked();
}

void PoolReconciler::RemovePool(const ObjectMeta& meta) {
  if (meta.name != pool_name_) return;
  MutexLock lock(&mu_);
  pool_.reset();
  ReconcileLocked();
}

void PoolReconciler::ReplacePods(std::vector<Pod> pods) {
  MutexLock lock(&mu_);
  pods_listed_ = true;
  pods_.clear();
  for (auto& p : pods) {
    std::string name = p.meta.name;
    pods_.emplace(std::move(name), std::move(p));
  }
  ReconcileLocked();
}

void PoolReconciler::UpsertPod(Pod pod) {
  MutexLock lock(&mu_);
  std::string name = pod.meta.name;
  pods_[name] = std::move(pod);
  ReconcileLocked();
}

void PoolReconciler::RemovePod(const ObjectMeta& meta) {
  MutexLock lock(&mu_);
  if (pods_.erase(meta.name) > 0) ReconcileLocked();
}

std::optional<InferencePool> PoolReconciler::pool() const {
  MutexLock lock(&mu_);
  return pool_;
}

void PoolReconciler::ReconcileLocked() {
  if (!pools_listed_) return;
  if (!pool_) {
    if (ready_written_ || !written_) {
      EPP_LOG_WARN("InferencePool {} not found: no endpoints, not ready", pool_name_);
      writer_.SetPoolReady(false);
      ready_written_ = false;
      written_ = std::vector<datastore::Endpoint>();
    }
    return;
  }
  if (!pods_listed_) return;
  auto endpoints = ComputeEndpoints(*pool_, pods_);
  if (!written_ || *written_ != endpoints) {
    EPP_LOG_INFO("InferencePool {}: {} endpoints", pool_name_, endpoints.size());
    written_ = endpoints;
    writer_.ReplaceAll(std::move(endpoints));
  }
  if (!ready_written_) {
    writer_.SetPoolReady(true);
    ready_written_ = true;
  }
}

}  // namespace epp::k8s
