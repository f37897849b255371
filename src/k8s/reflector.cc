#include "k8s/reflector.h"

#include <random>

#include "absl/strings/numbers.h"
#include "common/strings.h"

namespace epp::k8s {
namespace {

std::string QueryEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

// ---- WatchDecoder ----

absl::Status WatchDecoder::Feed(std::string_view data,
                                const std::function<absl::Status(const Event&)>& on_event) {
  // Whole lines inside `data` are decoded in place when nothing is buffered; only a trailing
  // partial line is copied.
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      if (buffer_.size() + data.size() > kMaxLine) {
        return absl::OutOfRangeError(StrCat("watch event over ", kMaxLine, " bytes"));
      }
      buffer_.append(data);
      return absl::OkStatus();
    }
    absl::Status s;
    if (buffer_.empty()) {
      s = DecodeLine(data.substr(0, nl), on_event);
    } else {
      if (buffer_.size() + nl > kMaxLine) {
        return absl::OutOfRangeError(StrCat("watch event over ", kMaxLine, " bytes"));
      }
      buffer_.append(data.substr(0, nl));
      std::string line = std::move(buffer_);
      buffer_.clear();
      s = DecodeLine(line, on_event);
    }
    if (!s.ok()) return s;
    data.remove_prefix(nl + 1);
  }
  return absl::OkStatus();
}

absl::Status WatchDecoder::DecodeLine(std::string_view line,
                                      const std::function<absl::Status(const Event&)>& on_event) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  if (line.empty()) return absl::OkStatus();
  simdjson::dom::element doc;
  if (auto err = parser_.parse(line.data(), line.size()).get(doc); err != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        StrCat("watch event is not JSON: ", simdjson::error_message(err)));
  }
  std::string_view type;
  if (doc["type"].get(type) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("watch event: type: must be a string");
  }
  simdjson::dom::element object;
  if (doc["object"].get(object) != simdjson::SUCCESS || !object.is_object()) {
    return absl::InvalidArgumentError("watch event: object: must be an object");
  }
  Event event{Type::kAdded, object};
  if (type == "ADDED") {
    event.type = Type::kAdded;
  } else if (type == "MODIFIED") {
    event.type = Type::kModified;
  } else if (type == "DELETED") {
    event.type = Type::kDeleted;
  } else if (type == "BOOKMARK") {
    event.type = Type::kBookmark;
  } else if (type == "ERROR") {
    event.type = Type::kError;
  } else {
    return absl::InvalidArgumentError(StrCat("watch event: type: unknown \"", type, "\""));
  }
  return on_event(event);
}

// ---- Reflector ----

Reflector::Reflector(std::shared_ptr<const RestConfig> config, ReflectorOptions options,
                     ReflectorHandler& handler)
    : options_(std::move(options)),
      handler_(handler),
      client_(std::move(config)),
      backoff_(options_.initial_backoff) {}

Reflector::~Reflector() { Stop(); }

void Reflector::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Reflector::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  client_.Cancel();
}

void Reflector::Stop() {
  Cancel();
  if (thread_.joinable()) thread_.join();
}

bool Reflector::WaitSynced(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return synced() || stop_.load(); }) && synced();
}

ReflectorStats Reflector::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Reflector::SetError(std::string error) {
  EPP_LOG_WARN("{}: {}", options_.resource, error);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.last_error = std::move(error);
}

void Reflector::CountEvent() {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.events;
}

void Reflector::Sleep(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, d, [this] { return stop_.load(); });
}

std::string Reflector::Query(bool watch, const std::string& continue_token, bool paged) const {
  std::string q = options_.collection_path + "?";
  if (!options_.label_selector.empty()) {
    StrAppend(&q, "labelSelector=", QueryEscape(options_.label_selector), "&");
  }
  if (!options_.field_selector.empty()) {
    StrAppend(&q, "fieldSelector=", QueryEscape(options_.field_selector), "&");
  }
  if (watch) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    int64_t base = options_.watch_timeout.count();
    int64_t timeout = base + static_cast<int64_t>(rng() % static_cast<uint64_t>(base + 1));
    StrAppend(&q, "watch=1&allowWatchBookmarks=true&timeoutSeconds=", timeout,
              "&resourceVersion=", QueryEscape(resource_version_));
  } else {
    if (paged) StrAppend(&q, "limit=", options_.page_size);
    if (!continue_token.empty()) StrAppend(&q, "&continue=", QueryEscape(continue_token));
  }
  if (q.back() == '&' || q.back() == '?') q.pop_back();
  return q;
}

void Reflector::Run() {
  bool need_list = true;
  while (!stop_.load()) {
    if (need_list) {
      absl::Status s = List();
      if (absl::IsCancelled(s) || stop_.load()) return;
      if (!s.ok()) {
        auto wait = std::max(backoff_, retry_after_);
        SetError(StrCat("list failed: ", s.message(), "; retrying in ", wait.count(), " ms"));
        Sleep(wait);
        retry_after_ = std::chrono::milliseconds(0);
        backoff_ = std::min(backoff_ * 2, options_.max_backoff);
        continue;
      }
      need_list = false;
    }
    auto started = std::chrono::steady_clock::now();
    WatchEnd end = Watch();
    if (stop_.load()) return;
    if (std::chrono::steady_clock::now() - started > std::chrono::minutes(2)) {
      backoff_ = options_.initial_backoff;
    }
    switch (end) {
      case WatchEnd::kRewatch:
        break;
      case WatchEnd::kRelist:
        need_list = true;
        break;
      case WatchEnd::kBackoff:
        Sleep(std::max(backoff_, retry_after_));
        retry_after_ = std::chrono::milliseconds(0);
        backoff_ = std::min(backoff_ * 2, options_.max_backoff);
        break;
    }
  }
}

absl::Status Reflector::List() {
  simdjson::dom::parser parser;
  std::string continue_token;
  bool paged = options_.page_size > 0;
  bool began = false;
  std::string list_version;  // metadata.resourceVersion of the last page
  while (true) {
    auto res = client_.Do("GET", Query(false, continue_token, paged));
    if (!res.ok()) return res.status();
    if (res->status == 410 && !continue_token.empty()) {
      // The continue token expired mid-list: start over with one unpaged list.
      EPP_LOG_INFO("{}: continue token expired; listing again without paging", options_.resource);
      continue_token.clear();
      paged = false;
      began = false;
      continue;
    }
    if (res->status == 429) {
      int seconds = 0;
      if (absl::SimpleAtoi(AV(res->retry_after), &seconds) && seconds > 0) {
        retry_after_ = std::chrono::seconds(std::min(seconds, 60));
      }
    }
    if (res->status != 200) {
      ApiStatus st = ParseApiStatus(res->body);
      return absl::UnavailableError(StrCat("GET ", options_.collection_path, ": HTTP ", res->status,
                                           st.reason.empty() ? "" : " ", st.reason, ": ",
                                           st.message));
    }
    simdjson::dom::element doc;
    if (auto err = parser.parse(res->body).get(doc); err != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          StrCat("list of ", options_.resource, " is not JSON: ", simdjson::error_message(err)));
    }
    // `items` is an array, or null for an empty list.
    simdjson::dom::array items;
    auto items_field = doc["items"];
    const bool no_items = items_field.error() == simdjson::SUCCESS && items_field.is_null();
    if (!no_items && items_field.get(items) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError(
          StrCat("list of ", options_.resource, ": items: must be an array"));
    }
    std::string_view rv, cont;
    if (doc["metadata"]["resourceVersion"].get(rv) != simdjson::SUCCESS) rv = {};
    if (doc["metadata"]["continue"].get(cont) != simdjson::SUCCESS) cont = {};
    if (!began) {
      handler_.OnListBegin();
      began = true;
    }
    if (!no_items) {
      for (simdjson::dom::element item : items) handler_.OnListItem(item);
    }
    list_version = std::string(rv);
    if (cont.empty()) break;
    continue_token = std::string(cont);
  }
  handler_.OnListEnd();
  resource_version_ = std::move(list_version);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.lists;
    stats_.last_error.clear();
  }
  {
    // Set under the lock WaitSynced waits with, so its wake-up cannot be lost.
    std::lock_guard<std::mutex> lock(mu_);
    synced_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
  backoff_ = options_.initial_backoff;
  EPP_LOG_DEBUG("{}: listed at resourceVersion {}", options_.resource, resource_version_);
  return absl::OkStatus();
}

Reflector::WatchEnd Reflector::Watch() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.watches;
  }
  WatchDecoder decoder;
  WatchEnd end = WatchEnd::kRewatch;
  const auto started = std::chrono::steady_clock::now();
  bool delivered = false;  // any event, bookmarks included
  auto on_event = [&](const WatchDecoder::Event& ev) -> absl::Status {
    std::string_view rv;
    if (ev.object["metadata"]["resourceVersion"].get(rv) != simdjson::SUCCESS) rv = {};
    delivered = true;
    switch (ev.type) {
      case WatchDecoder::Type::kAdded:
      case WatchDecoder::Type::kModified:
        handler_.OnUpsert(ev.object);
        CountEvent();
        break;
      case WatchDecoder::Type::kDeleted:
        handler_.OnDelete(ev.object);
        CountEvent();
        break;
      case WatchDecoder::Type::kBookmark:
        break;
      case WatchDecoder::Type::kError: {
        ApiStatus st = DecodeApiStatus(ev.object);
        if (st.code == 410) {
          end = WatchEnd::kRelist;
          return absl::AbortedError(StrCat("watch expired (410 ", st.reason, "): ", st.message));
        }
        end = WatchEnd::kBackoff;
        return absl::AbortedError(
            StrCat("watch error event: ", st.code, " ", st.reason, ": ", st.message));
      }
    }
    if (!rv.empty()) resource_version_ = std::string(rv);
    return absl::OkStatus();
  };
  // Idle limit: the server ends the watch at timeoutSeconds (≤ 2 × watch_timeout) and sends
  // bookmarks meanwhile, so silence well past that means a dead connection.
  auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(options_.watch_timeout * 2 +
                                                                    std::chrono::seconds(30));
  auto res = client_.Stream(Query(true, "", false), idle,
                            [&](std::string_view data) { return decoder.Feed(data, on_event); });
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (end == WatchEnd::kRelist) ++stats_.relists_gone;
  }
  if (!res.ok()) {
    if (absl::IsCancelled(res.status())) return WatchEnd::kBackoff;
    if (end == WatchEnd::kRelist) {
      EPP_LOG_INFO("{}: {}; listing again", options_.resource, SV(res.status().message()));
      return end;
    }
    SetError(StrCat("watch: ", res.status().message()));
    // A torn line or a dropped connection: watch again from the last good version after a
    // pause (the backoff protects a server that keeps failing).
    return WatchEnd::kBackoff;
  }
  if (res->status == 200) {
    if (decoder.pending() > 0) {
      SetError("watch stream ended inside an event; watching again from the last version");
      return WatchEnd::kBackoff;
    }
    if (!delivered && std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
      SetError("watch ended at once without an event; backing off before watching again");
      return WatchEnd::kBackoff;
    }
    return WatchEnd::kRewatch;
  }
  ApiStatus st = ParseApiStatus(res->body);
  if (res->status == 410) {
    EPP_LOG_INFO("{}: resourceVersion {} expired (410); listing again", options_.resource,
                 resource_version_);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.relists_gone;
    return WatchEnd::kRelist;
  }
  std::string lower = st.message;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (res->status == 504 && lower.find("too large resource version") != std::string::npos) {
    return WatchEnd::kRelist;  // ResourceVersionTooLarge: the server is behind us
  }
  if (res->status == 429) {
    int seconds = 0;
    if (absl::SimpleAtoi(AV(res->retry_after), &seconds) && seconds > 0) {
      retry_after_ = std::chrono::seconds(std::min(seconds, 60));
    }
  }
  SetError(StrCat("watch: HTTP ", res->status, " ", st.reason, ": ", st.message));
  return WatchEnd::kBackoff;
}

}  // namespace epp::k8s
