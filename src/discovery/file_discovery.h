// file-discovery: endpoints without Kubernetes, read from a YAML/JSON file as llm-d-router
// documents it, and re-read when the file changes.
//
// Plugin type "file-discovery"; parameters:
//   path       (string, required)  the endpoints file
//   watchFile  (bool, default true) reload on change (write, atomic rename, symlink swap)
//
// File schema:
//   endpoints:
//   - name: pod-a            # required, unique within a namespace
//     namespace: default     # optional, default "default"
//     address: 10.0.0.1      # IPv4, IPv6, or a host name (resolved)
//     port: "8000"           # string or number, 1..65535
//     labels: {k: v}         # optional
// Files over 1 MiB are rejected. Bad entries are skipped with a log line; the rest are used.
// A reload that fails to read or parse keeps the previous endpoints. Entries that disappear
// from the file are removed.
#ifndef EPP_DISCOVERY_FILE_DISCOVERY_H_
#define EPP_DISCOVERY_FILE_DISCOVERY_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "common/plugin.h"
#include "datastore/datastore.h"

namespace epp::discovery {

inline constexpr std::string_view kFileDiscoveryType = "file-discovery";
inline constexpr size_t kMaxEndpointsFileBytes = 1 << 20;

// A source of endpoints that writes into the datastore. Start() does the first sync before
// returning; Stop() ends any background work. Both are called from one thread.
class DiscoveryPlugin : public Plugin {
 public:
  using Plugin::Plugin;
  virtual absl::Status Start(datastore::EndpointWriter& writer) = 0;
  virtual void Stop() = 0;
};

// Resolves a host name to a numeric address (first result). Blocking.
using Resolver = std::function<absl::StatusOr<std::string>(const std::string& host)>;
absl::StatusOr<std::string> ResolveHost(const std::string& host);

struct ParsedEndpoints {
  std::vector<datastore::Endpoint> endpoints;
  std::vector<std::string> skipped;  // one message per skipped entry, naming it and the field
};

// Parses the file contents. Errors only for an unreadable document (not YAML, no `endpoints`
// list, over the size cap); bad entries are reported in `skipped`.
absl::StatusOr<ParsedEndpoints> ParseEndpointsFile(std::string_view text, const Resolver& resolver);

class FileDiscovery : public DiscoveryPlugin {
 public:
  // `poll_fallback_ms`: how often the file is re-read when no inotify event arrives (changes
  // inotify cannot see, such as a symlink target outside the watched directory).
  FileDiscovery(std::string name, std::string path, bool watch, Resolver resolver = ResolveHost,
                int poll_fallback_ms = 2000);
  ~FileDiscovery() override;
  std::string_view Type() const override { return kFileDiscoveryType; }

  // Loads the file once (error if it cannot be read or parsed), marks the pool ready, and
  // starts the watcher thread when watchFile is set.
  absl::Status Start(datastore::EndpointWriter& writer) override;
  void Stop() override;

  // Reads the file now and applies it when its contents changed. Thread-compatible with the
  // watcher (the watcher is its only other caller).
  absl::Status Reload();

  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);

 private:
  absl::Status StartWatch();
  void StopWatch();
  void WatchLoop();

  const std::string path_;
  const bool watch_;
  const Resolver resolver_;
  const int poll_fallback_ms_;
  datastore::EndpointWriter* writer_ = nullptr;
  std::string last_contents_;
  bool loaded_ = false;
  int stop_fd_ = -1;     // eventfd that wakes the watcher to stop
  int inotify_fd_ = -1;  // watch on the file's directory
  std::thread watcher_;
};

}  // namespace epp::discovery

#endif  // EPP_DISCOVERY_FILE_DISCOVERY_H_
