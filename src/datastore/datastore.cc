#include "datastore/datastore.h"

#include "common/host_port.h"

namespace epp::datastore {

Endpoint MakeEndpoint(std::string name, std::string ns, std::string address, uint16_t port,
                      std::map<std::string, std::string> labels) {
  Endpoint e;
  e.name = std::move(name);
  e.ns = std::move(ns);
  e.address = std::move(address);
  e.port = port;
  e.labels = std::move(labels);
  e.host_port = JoinHostPort(e.address, e.port);
  e.metrics = std::make_shared<Published<Metrics>>();
  return e;
}

Datastore::Datastore() { snapshot_.Store(std::make_shared<const datastore::Snapshot>()); }

void Datastore::Upsert(Endpoint endpoint) {
  MutexLock lock(&mu_);
  std::string key = endpoint.Key();
  auto it = endpoints_.find(key);
  // Unchanged endpoints keep their pointer, so readers holding it see no churn.
  if (it != endpoints_.end() && *it->second == endpoint) return;
  if (it != endpoints_.end()) endpoint.metrics = it->second->metrics;  // keep what was scraped
  if (!endpoint.metrics) endpoint.metrics = std::make_shared<Published<Metrics>>();
  endpoints_[key] = std::make_shared<const Endpoint>(std::move(endpoint));
  PublishLocked();
}

void Datastore::Remove(const std::string& key) {
  MutexLock lock(&mu_);
  if (endpoints_.erase(key) > 0) PublishLocked();
}

void Datastore::ReplaceAll(std::vector<Endpoint> endpoints) {
  MutexLock lock(&mu_);
  std::map<std::string, std::shared_ptr<const Endpoint>> next;
  for (auto& e : endpoints) {
    std::string key = e.Key();
    auto old = endpoints_.find(key);
    if (old != endpoints_.end() && *old->second == e) {
      next[key] = old->second;
    } else {
      if (old != endpoints_.end()) e.metrics = old->second->metrics;  // keep what was scraped
      if (!e.metrics) e.metrics = std::make_shared<Published<Metrics>>();
      next[key] = std::make_shared<const Endpoint>(std::move(e));
    }
  }
  endpoints_ = std::move(next);
  PublishLocked();
}

void Datastore::SetPoolReady(bool ready) {
  MutexLock lock(&mu_);
  pool_ready_ = ready;
  if (!ready) endpoints_.clear();
  PublishLocked();
}

void Datastore::PublishLocked() {
  auto snap = std::make_shared<datastore::Snapshot>();
  snap->endpoints.reserve(endpoints_.size());
  for (const auto& [key, ep] : endpoints_) snap->endpoints.push_back(ep);
  snap->pool_ready = pool_ready_;
  snap->version = ++version_;
  snapshot_.Store(std::move(snap));
}

}  // namespace epp::datastore
