#include "k8s/leader_elector.h"

#include <unistd.h>

#include <ctime>
#include <random>

#include "common/logging.h"
#include "common/strings.h"
#include "k8s/objects.h"

namespace epp::k8s {
namespace {

// MicroTime: RFC 3339 with microseconds, UTC.
std::string MicroTimeNow() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()) %
                std::chrono::seconds(1);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros.count()));
  return buf;
}

struct LeaseRecord {
  std::string resource_version;
  std::string holder;
  std::string acquire_time;
  std::string renew_time;
  int64_t duration_seconds = 0;
  int64_t transitions = 0;
};

absl::StatusOr<LeaseRecord> ParseLease(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("Lease: not JSON");
  }
  LeaseRecord r;
  std::string_view s;
  if (doc["metadata"]["resourceVersion"].get(s) == simdjson::SUCCESS) r.resource_version = s;
  simdjson::dom::element spec;
  if (doc["spec"].get(spec) == simdjson::SUCCESS && spec.is_object()) {
    if (spec["holderIdentity"].get(s) == simdjson::SUCCESS) r.holder = s;
    if (spec["acquireTime"].get(s) == simdjson::SUCCESS) r.acquire_time = s;
    if (spec["renewTime"].get(s) == simdjson::SUCCESS) r.renew_time = s;
    int64_t v = 0;
    if (spec["leaseDurationSeconds"].get(v) == simdjson::SUCCESS) r.duration_seconds = v;
    if (spec["leaseTransitions"].get(v) == simdjson::SUCCESS) r.transitions = v;
  }
  return r;
}

}  // namespace

std::string LeaseNameForPool(const std::string& pool_namespace, const std::string& pool_name) {
  return StrCat("epp-", pool_namespace, "-", pool_name,
                ".gateway-api-inference-extension.sigs.k8s.io");
}

std::string DefaultIdentity() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device rd;
  uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(r));
  return StrCat(host[0] ? host : "epp", "_", hex);
}

LeaderElector::LeaderElector(std::shared_ptr<const RestConfig> config,
                             LeaderElectionOptions options, std::function<void(bool)> on_change)
    : options_(std::move(options)), on_change_(std::move(on_change)), client_(std::move(config)) {}

LeaderElector::~LeaderElector() { Stop(); }

void LeaderElector::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LeaderElector::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string LeaderElector::last_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_error_;
}

std::string LeaderElector::LeasePath(bool item) const {
  std::string p =
      StrCat("/apis/coordination.k8s.io/v1/namespaces/", options_.lease_namespace, "/leases");
  if (item) StrAppend(&p, "/", options_.lease_name);
  return p;
}

std::string LeaderElector::LeaseJson(const std::string& resource_version, const std::string& holder,
                                     const std::string& acquire_time, const std::string& renew_time,
                                     int64_t transitions) const {
  std::string meta = StrCat(R"("name":")", JsonEscape(options_.lease_name), R"(","namespace":")",
                            JsonEscape(options_.lease_namespace), "\"");
  if (!resource_version.empty()) {
    StrAppend(&meta, R"(,"resourceVersion":")", JsonEscape(resource_version), "\"");
  }
  int64_t duration =
      std::chrono::duration_cast<std::chrono::seconds>(options_.lease_duration).count();
  return StrCat(R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{)", meta,
                R"(},"spec":{"holderIdentity":")", JsonEscape(holder),
                R"(","leaseDurationSeconds":)", duration, R"(,"acquireTime":")", acquire_time,
                R"(","renewTime":")", renew_time, R"(","leaseTransitions":)", transitions, "}}");
}

void LeaderElector::SetLeader(bool leader) {
  if (leader_.exchange(leader) == leader) return;
  if (leader) {
    EPP_LOG_INFO("leader election: {} is now the leader (Lease {}/{})", options_.identity,
                 options_.lease_namespace, options_.lease_name);
  } else {
    EPP_LOG_WARN("leader election: {} is no longer the leader", options_.identity);
  }
  if (on_change_) on_change_(leader);
}

bool LeaderElector::TryAcquireOrRenew() {
  auto fail = [this](std::string error) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error != last_error_) EPP_LOG_WARN("leader election: {}", error);
    last_error_ = std::move(error);
    return false;
  };
  held_by_other_ = false;
  std::string now = MicroTimeNow();
  auto got = client_.Do("GET", LeasePath(true), {}, {}, options_.retry_period);
  if (!got.ok()) return fail(std::string(got.status().message()));
  if (got->status == 404) {
    auto created =
        client_.Do("POST", LeasePath(false), LeaseJson("", options_.identity, now, now, 0),
                   "application/json", options_.retry_period);
    if (!created.ok()) return fail(std::string(created.status().message()));
    if (created->status != 201 && created->status != 200) {
      ApiStatus st = ParseApiStatus(created->body);
      return fail(StrCat("create Lease: HTTP ", created->status, " ", st.reason, ": ", st.message));
    }
    auto rec = ParseLease(created->body);
    last_resource_version_ = rec.ok() ? rec->resource_version : "";
    acquire_time_ = now;
    transitions_ = 0;
    observed_record_ = StrCat(options_.identity, "|", now);
    observed_at_ = std::chrono::steady_clock::now();
    return true;
  }
  if (got->status != 200) {
    ApiStatus st = ParseApiStatus(got->body);
    return fail(StrCat("get Lease: HTTP ", got->status, " ", st.reason, ": ", st.message));
  }
  auto rec = ParseLease(got->body);
  if (!rec.ok()) return fail(std::string(rec.status().message()));
  std::string record = StrCat(rec->holder, "|", rec->renew_time);
  auto local_now = std::chrono::steady_clock::now();
  if (record != observed_record_) {
    observed_record_ = record;
    observed_at_ = local_now;
  }
  bool held_by_us = rec->holder == options_.identity;
  auto duration = rec->duration_seconds > 0
                      ? std::chrono::milliseconds(rec->duration_seconds * 1000)
                      : options_.lease_duration;
  if (!held_by_us && !rec->holder.empty() && local_now - observed_at_ < duration) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_.clear();
    held_by_other_ = true;
    return false;  // someone else holds a live Lease
  }
  std::string acquire = held_by_us && !rec->acquire_time.empty() ? rec->acquire_time : now;
  int64_t transitions = held_by_us ? rec->transitions : rec->transitions + 1;
  auto put =
      client_.Do("PUT", LeasePath(true),
                 LeaseJson(rec->resource_version, options_.identity, acquire, now, transitions),
                 "application/json", options_.retry_period);
  if (!put.ok()) return fail(std::string(put.status().message()));
  if (put->status == 409) return fail("update Lease: conflict (another replica updated it)");
  if (put->status != 200) {
    ApiStatus st = ParseApiStatus(put->body);
    return fail(StrCat("update Lease: HTTP ", put->status, " ", st.reason, ": ", st.message));
  }
  auto updated = ParseLease(put->body);
  last_resource_version_ = updated.ok() ? updated->resource_version : "";
  acquire_time_ = acquire;
  transitions_ = transitions;
  observed_record_ = StrCat(options_.identity, "|", now);
  observed_at_ = local_now;
  std::lock_guard<std::mutex> lock(mu_);
  last_error_.clear();
  return true;
}

void LeaderElector::Release() {
  // Set only by this replica's own successful writes; the PUT carries it, so if anyone else
  // wrote the Lease since, the server answers 409 and nothing is cleared.
  if (last_resource_version_.empty()) return;
  // Stop() does not cancel the client, so this request still goes out (bounded by its timeout).
  std::string now = MicroTimeNow();
  auto put = client_.Do("PUT", LeasePath(true),
                        LeaseJson(last_resource_version_, "", acquire_time_, now, transitions_),
                        "application/json", std::chrono::seconds(2));
  if (put.ok() && put->status == 200) {
    EPP_LOG_INFO("leader election: released Lease {}/{}", options_.lease_namespace,
                 options_.lease_name);
  } else {
    EPP_LOG_WARN("leader election: releasing the Lease failed: {}",
                 put.ok() ? StrCat("HTTP ", put->status) : std::string(put.status().message()));
  }
}

void LeaderElector::Run() {
  auto last_renew = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    // Leadership that lapsed by time (IsLeader) is reported as a transition before anything
    // else, so on_change sees every loss.
    if (leader_.load() && !IsLeader()) SetLeader(false);
    auto attempt_start = std::chrono::steady_clock::now();
    bool ok = TryAcquireOrRenew();
    auto now = std::chrono::steady_clock::now();
    if (ok) {
      last_renew = attempt_start;
      valid_until_.store((attempt_start + options_.renew_deadline).time_since_epoch().count(),
                         std::memory_order_release);
      SetLeader(true);
    } else if (held_by_other_ || now - last_renew >= options_.renew_deadline) {
      // Someone else holds the Lease, or no renewal got through for the renew deadline.
      SetLeader(false);
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, options_.retry_period, [this] { return stop_.load(); });
  }
  SetLeader(false);  // readiness drops before the Lease is handed over
  Release();
}

}  // namespace epp::k8s
