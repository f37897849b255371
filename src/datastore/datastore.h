// Datastore: owns the published endpoint Snapshot. Producers (file discovery, Kubernetes
// reconcilers) write through the EndpointWriter interface; requests read GetSnapshot().
#ifndef EPP_DATASTORE_DATASTORE_H_
#define EPP_DATASTORE_DATASTORE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "common/published.h"
#include "datastore/endpoint.h"

namespace epp::datastore {

// What producers of membership call. Implementations are thread-safe.
class EndpointWriter {
 public:
  virtual ~EndpointWriter() = default;
  // Adds or replaces the endpoint with the same Key().
  virtual void Upsert(Endpoint endpoint) = 0;
  // Removes the endpoint with this key; unknown keys are ignored.
  virtual void Remove(const std::string& key) = 0;
  // Replaces the whole membership with `endpoints` (a full resync from a source).
  virtual void ReplaceAll(std::vector<Endpoint> endpoints) = 0;
  // Marks the pool as synced (true) or gone (false). A pool that is gone also empties.
  virtual void SetPoolReady(bool ready) = 0;
};

// Thread-safe: writers serialize on a mutex and publish a fresh Snapshot; readers never lock.
class Datastore : public EndpointWriter {
 public:
  Datastore();

  // Lock-free; never null.
  std::shared_ptr<const datastore::Snapshot> GetSnapshot() const { return snapshot_.Load(); }

  void Upsert(Endpoint endpoint) override;
  void Remove(const std::string& key) override;
  void ReplaceAll(std::vector<Endpoint> endpoints) override;
  void SetPoolReady(bool ready) override;

 private:
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Mutex mu_;
  std::map<std::string, std::shared_ptr<const Endpoint>> endpoints_ ABSL_GUARDED_BY(mu_);
  bool pool_ready_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  Published<datastore::Snapshot> snapshot_;
};

}  // namespace epp::datastore

#endif  // EPP_DATASTORE_DATASTORE_H_
