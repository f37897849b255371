// RestClient: blocking HTTP/1.1 calls to the Kubernetes API server (plain or TLS, bearer token or
// client certificate), for the watcher and leader-election threads. Each call opens its own
// connection; a watch keeps its connection for the life of the stream.
//
// Thread-safety: one thread makes calls; Cancel() may be called from any thread and makes the
// call in progress, and every later one, return Cancelled promptly.
#ifndef EPP_K8S_REST_CLIENT_H_
#define EPP_K8S_REST_CLIENT_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "k8s/rest_config.h"

namespace epp::k8s {

struct RestResponse {
  int status = 0;
  std::string body;         // the whole body (Do), or the body of a non-200 answer (Stream)
  std::string retry_after;  // the Retry-After header, if any
};

class RestClient {
 public:
  explicit RestClient(std::shared_ptr<const RestConfig> config);
  ~RestClient();
  RestClient(const RestClient&) = delete;
  RestClient& operator=(const RestClient&) = delete;

  // One request; the response whatever its status. Errors: Unavailable (connect, TLS, I/O,
  // connection closed early), DeadlineExceeded (`timeout` for the whole exchange), OutOfRange
  // (body over `body_limit`), Cancelled.
  absl::StatusOr<RestResponse> Do(std::string_view method, std::string_view target,
                                  std::string_view body = {},
                                  std::string_view content_type = "application/json",
                                  std::chrono::milliseconds timeout = std::chrono::seconds(30),
                                  size_t body_limit = 256u << 20);

  // A streaming GET (a watch). With status 200 the body is passed to `on_data` as it arrives
  // (arbitrary splits) until the server ends it, `idle_timeout` passes without a byte, or
  // `on_data` returns an error (returned as is); the response then has status 200 and an empty
  // body. Any other status is returned with its body (up to 1 MiB).
  absl::StatusOr<RestResponse> Stream(std::string_view target,
                                      std::chrono::milliseconds idle_timeout,
                                      const std::function<absl::Status(std::string_view)>& on_data);

  // Whether the TLS material (CA, client certificate and key) could be loaded; every call fails
  // with this status when it could not.
  absl::Status status() const;

  void Cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace epp::k8s

#endif  // EPP_K8S_REST_CLIENT_H_
