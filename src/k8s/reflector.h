// Reflector: keeps a handler in sync with one collection of the API server by list + watch, as
// client-go's reflector does:
//   - list (paged by `limit`/`continue`; an expired continue token falls back to one unpaged
//     list), then watch from the list's resourceVersion with bookmarks and a server-side timeout
//     randomised in [watch_timeout, 2 × watch_timeout];
//   - a watch that ends cleanly is re-opened from the last resourceVersion seen (events and
//     bookmarks advance it); 410 Gone, as an HTTP status or as an ERROR event, re-lists;
//   - failures (connection refused, 5xx, 403, a missing resource type) back off exponentially
//     (initial_backoff doubling to max_backoff; reset after a watch that lived 2 minutes) and
//     retry; 429 waits for Retry-After. A watch failure retries the watch, not the list.
//   - a torn or undecodable event line ends the watch (re-opened from the last good version);
//   - a watch that ends within a second having delivered nothing counts as a failure (backs
//     off), so a proxy that closes streams at once cannot make a hot reconnect loop.
// The handler is called on the reflector's thread only.
#ifndef EPP_K8S_REFLECTOR_H_
#define EPP_K8S_REFLECTOR_H_

#include <simdjson.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/logging.h"
#include "common/strings.h"
#include "k8s/objects.h"
#include "k8s/rest_client.h"

namespace epp::k8s {

class ReflectorHandler {
 public:
  virtual ~ReflectorHandler() = default;
  // A full list: OnListItem for each object, then OnListEnd. The state before OnListBegin is
  // replaced by the listed objects at OnListEnd (an aborted list never reaches OnListEnd).
  virtual void OnListBegin() = 0;
  virtual void OnListItem(simdjson::dom::element object) = 0;
  virtual void OnListEnd() = 0;
  virtual void OnUpsert(simdjson::dom::element object) = 0;  // ADDED or MODIFIED
  virtual void OnDelete(simdjson::dom::element object) = 0;  // DELETED (the last state)
};

struct ReflectorOptions {
  std::string resource;         // for logs: "pods", "inferencepools", ...
  std::string collection_path;  // "/api/v1/namespaces/default/pods"
  std::string label_selector;   // raw selector syntax, "" = none
  std::string field_selector;
  int page_size = 500;
  std::chrono::seconds watch_timeout{300};
  std::chrono::milliseconds initial_backoff{800};
  std::chrono::milliseconds max_backoff{30000};
};

// Counters for tests and the debug page.
struct ReflectorStats {
  uint64_t lists = 0;    // completed lists
  uint64_t watches = 0;  // watch requests opened (any outcome)
  uint64_t events = 0;   // ADDED/MODIFIED/DELETED events applied
  uint64_t relists_gone = 0;
  std::string last_error;
};

class Reflector {
 public:
  Reflector(std::shared_ptr<const RestConfig> config, ReflectorOptions options,
            ReflectorHandler& handler);
  ~Reflector();  // stops
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  void Start();
  // Ends the current request and joins the thread. Idempotent.
  void Stop();
  // Stop() without the join: the thread ends soon after. Idempotent.
  void Cancel();

  const std::string& resource() const { return options_.resource; }
  bool synced() const { return synced_.load(std::memory_order_acquire); }
  // Waits until the first list completed; false on timeout or stop.
  bool WaitSynced(std::chrono::milliseconds timeout);
  ReflectorStats stats() const;

 private:
  enum class WatchEnd { kRewatch, kRelist, kBackoff };
  void Run();
  absl::Status List();
  WatchEnd Watch();
  void Sleep(std::chrono::milliseconds d);
  std::string Query(bool watch, const std::string& continue_token, bool paged) const;
  void SetError(std::string error);
  void CountEvent();  // as each event is applied, so the debug page is live

  const ReflectorOptions options_;
  ReflectorHandler& handler_;
  RestClient client_;
  std::string resource_version_;  // last seen; thread-owned
  std::chrono::milliseconds backoff_;
  std::chrono::milliseconds retry_after_{0};  // set by a 429
  std::atomic<bool> synced_{false};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;  // guards stats_ and the stop wake-up
  std::condition_variable cv_;
  ReflectorStats stats_;
  std::thread thread_;
};

// A handler that decodes objects into T and forwards whole-state replacements and single
// changes. Objects that fail to decode are logged and left out of a list; an update that fails
// to decode removes the object (kRemove) or keeps its last good state (kKeepLast: for the pool,
// where removal would take every endpoint away).
template <typename T>
class TypedHandler : public ReflectorHandler {
 public:
  using Decoder = absl::StatusOr<T> (*)(simdjson::dom::element);
  struct Callbacks {
    std::function<void(std::vector<T>)> replace;
    std::function<void(T)> upsert;
    std::function<void(const ObjectMeta&)> remove;
  };
  enum class BadUpdate { kRemove, kKeepLast };
  TypedHandler(std::string resource, Decoder decode, Callbacks callbacks,
               BadUpdate bad_update = BadUpdate::kRemove)
      : resource_(std::move(resource)),
        decode_(decode),
        callbacks_(std::move(callbacks)),
        bad_update_(bad_update) {}

  void OnListBegin() override { pending_.clear(); }
  void OnListItem(simdjson::dom::element object) override {
    auto decoded = decode_(object);
    if (decoded.ok()) {
      pending_.push_back(std::move(*decoded));
    } else {
      LogBad(object, decoded.status());
    }
  }
  void OnListEnd() override {
    callbacks_.replace(std::move(pending_));
    pending_.clear();
  }
  void OnUpsert(simdjson::dom::element object) override {
    auto decoded = decode_(object);
    if (decoded.ok()) {
      callbacks_.upsert(std::move(*decoded));
      return;
    }
    LogBad(object, decoded.status());
    if (bad_update_ == BadUpdate::kKeepLast) return;
    if (auto meta = DecodeMeta(object); meta.ok()) callbacks_.remove(*meta);
  }
  void OnDelete(simdjson::dom::element object) override {
    if (auto meta = DecodeMeta(object); meta.ok()) callbacks_.remove(*meta);
  }

 private:
  void LogBad(simdjson::dom::element object, const absl::Status& status) {
    auto meta = DecodeMeta(object);
    EPP_LOG_WARN("{} {}: ignored: {}", resource_, meta.ok() ? meta->ns + "/" + meta->name : "?",
                 SV(status.message()));
  }
  const std::string resource_;
  const Decoder decode_;
  const Callbacks callbacks_;
  const BadUpdate bad_update_;
  std::vector<T> pending_;
};

// Splits a watch stream into lines and decodes each event. Used by Reflector; public for the
// fuzzer and tests.
class WatchDecoder {
 public:
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  struct Event {
    Type type;
    simdjson::dom::element object;  // valid until the next Feed call's callback returns
  };
  static constexpr size_t kMaxLine = 64u << 20;

  // Feeds bytes; calls `on_event` for each complete line (blank lines are skipped). Returns the
  // first error: a line that is not a JSON event (InvalidArgument naming what is wrong), a line
  // over kMaxLine (OutOfRange), or the callback's error. After an error the decoder must not be
  // fed again.
  absl::Status Feed(std::string_view data,
                    const std::function<absl::Status(const Event&)>& on_event);
  // Bytes of an incomplete last line.
  size_t pending() const { return buffer_.size(); }

 private:
  absl::Status DecodeLine(std::string_view line,
                          const std::function<absl::Status(const Event&)>& on_event);
  std::string buffer_;
  simdjson::dom::parser parser_;
};

}  // namespace epp::k8s

#endif  // EPP_K8S_REFLECTOR_H_
