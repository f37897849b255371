// Scraper: polls every endpoint's metrics page on one event-loop thread with keep-alive
// connections (not a thread per endpoint), extracts the engine's metrics and publishes them
// whole into the endpoint's cell with the time they were read.
//
// - Each endpoint is polled at a fixed rate of one per `interval`; the first poll comes after a
//   random fraction of it, so endpoints are not scraped in lock-step. Due times fall on a grid
//   of interval/10 slots so that one wake-up of the loop serves every endpoint due in a slot. A
//   poll still running when the next is due is not overlapped.
// - Every poll has `timeout`; pages over `max_page_bytes` are errors.
// - The engine comes from the endpoint label `engine_label` (default engine otherwise); an
//   unknown engine is an error for that endpoint.
// - Membership follows the datastore: new endpoints start polling, removed ones stop (their
//   connection closes) within one membership check (`membership_interval`).
// - On an error the endpoint keeps its last good metrics (they age); an error is logged when
//   it starts and when it clears, not on every poll.
//
// Thread-safety: Start/Stop from one thread; everything else runs on the scraper's thread.
#ifndef EPP_DATALAYER_SCRAPER_H_
#define EPP_DATALAYER_SCRAPER_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/io_context.hpp"
#include "boost/asio/steady_timer.hpp"
#include "common/mutex.h"
#include "datalayer/engine_metrics.h"
#include "datastore/datastore.h"

namespace epp::datalayer {

struct ScraperOptions {
  std::chrono::milliseconds interval{50};
  std::chrono::milliseconds timeout{1000};
  std::chrono::milliseconds membership_interval{100};
  size_t max_page_bytes = 16u << 20;
  std::string path = "/metrics";
  bool tls = false;                  // scheme https
  bool insecure_skip_verify = true;  // with tls: accept any certificate
  std::string engine_label = "inference.networking.k8s.io/engine-type";
  std::string default_engine = "vllm";
  std::vector<EngineConfig> engines = BuiltinEngines();
};

// What the scraper knows of one endpoint beyond its metrics (for /debug/endpoints and tests).
struct ScrapeStatus {
  std::string last_error;  // "" when the last poll succeeded
  uint64_t polls = 0;
  uint64_t failures = 0;
};

// Rounds `t` up to the next multiple of interval/10 (at least 1 ms) since the clock's epoch: the
// grid scrape polls fall on.
std::chrono::steady_clock::time_point AlignToSlot(std::chrono::steady_clock::time_point t,
                                                  std::chrono::nanoseconds interval);

class Scraper {
 public:
  Scraper(const datastore::Datastore& datastore, ScraperOptions options);
  ~Scraper();

  void Start();  // starts the event-loop thread
  void Stop();   // stops polling and joins; idempotent

  // Thread-safe copy of every endpoint's status, by endpoint key.
  std::map<std::string, ScrapeStatus> Statuses() const;

 private:
  struct Target;
  void SyncMembership();
  void ScheduleMembership();
  void SchedulePoll(const std::shared_ptr<Target>& t);  // at t->next_due
  void Poll(const std::shared_ptr<Target>& t);

  const datastore::Datastore& datastore_;
  const ScraperOptions options_;
  boost::asio::io_context io_;
  boost::asio::steady_timer membership_timer_;
  uint64_t seen_version_ = 0;
  std::map<std::string, std::shared_ptr<Target>> targets_;  // scraper thread only
  mutable Mutex status_mu_;
  std::map<std::string, ScrapeStatus> statuses_ ABSL_GUARDED_BY(status_mu_);
  std::thread thread_;
  std::atomic<bool> running_{false};
};

}  // namespace epp::datalayer

#endif  // EPP_DATALAYER_SCRAPER_H_
