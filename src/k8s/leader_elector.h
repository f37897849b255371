// LeaderElector: leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm
// and controller-runtime's default timings (lease 15 s, renew deadline 10 s, retry 2 s):
//   - a candidate GETs the Lease; creates it when absent (409 = someone else did);
//   - it takes the Lease when it holds it already, when it has no holder, or when the record
//     has not changed for a lease duration by the candidate's own clock (clocks of different
//     machines are never compared); the update carries the last-seen resourceVersion, so of two
//     racing candidates one gets 409 Conflict and stays a follower;
//   - the leader renews every retry period; when no renewal succeeded for the renew deadline it
//     stops being leader (readiness drops) and goes back to being a candidate;
//   - Stop() stops reporting leader, then releases the Lease (holder cleared, guarded by its
//     resourceVersion so it can never clear another replica's) so a follower takes over at once.
// Every replica keeps serving; only IsLeader() (readiness) depends on the election.
#ifndef EPP_K8S_LEADER_ELECTOR_H_
#define EPP_K8S_LEADER_ELECTOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "k8s/rest_client.h"

namespace epp::k8s {

struct LeaderElectionOptions {
  std::string lease_namespace;
  std::string lease_name;
  std::string identity;  // unique per replica
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

// The reference's Lease name for a pool.
std::string LeaseNameForPool(const std::string& pool_namespace, const std::string& pool_name);
// hostname_<random hex>, as controller-runtime makes it.
std::string DefaultIdentity();

class LeaderElector {
 public:
  LeaderElector(std::shared_ptr<const RestConfig> config, LeaderElectionOptions options,
                std::function<void(bool leader)> on_change = nullptr);
  ~LeaderElector();  // Stop()

  void Start();
  void Stop();
  // True while this replica holds the Lease: set by a successful acquire or renewal and valid
  // until the renew deadline counted from the *start* of that attempt, so readiness drops on
  // time even when the elector thread is stuck (a hung DNS lookup, a slow API server) and
  // cannot run. on_change reports the elector's own transitions only.
  bool IsLeader() const {
    return leader_.load(std::memory_order_acquire) &&
           std::chrono::steady_clock::now().time_since_epoch().count() <
               valid_until_.load(std::memory_order_acquire);
  }
  std::string last_error() const;

 private:
  // One attempt: true when this replica holds the Lease afterwards.
  bool TryAcquireOrRenew();
  void Release();
  void SetLeader(bool leader);
  void Run();
  std::string LeasePath(bool item) const;
  std::string LeaseJson(const std::string& resource_version, const std::string& holder,
                        const std::string& acquire_time, const std::string& renew_time,
                        int64_t transitions) const;

  const LeaderElectionOptions options_;
  std::function<void(bool)> on_change_;
  RestClient client_;
  std::atomic<bool> leader_{false};
  std::atomic<std::chrono::steady_clock::rep> valid_until_{0};  // steady_clock ticks
  std::atomic<bool> stop_{false};
  // What the last GET showed, and when (local clock) it last changed.
  std::string observed_record_;
  std::chrono::steady_clock::time_point observed_at_{};
  std::string last_resource_version_;
  std::string acquire_time_;
  int64_t transitions_ = 0;
  bool held_by_other_ = false;  // the last attempt saw another replica's live Lease
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace epp::k8s

#endif  // EPP_K8S_LEADER_ELECTOR_H_
