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
//   modelRewrites:           # optional: InferenceModelRewrite objects (docs/model-rewrite.md)
//   - name: alias            # or metadata.name; unique
//     spec:
//       poolRef: {name: p}   # optional, ignored (the file describes one pool)
//       rules:
//       - matches: [{model: {type: Exact, value: alias}}]   # none = every model
//         targets: [{modelRewrite: llama, weight: 100}]     # weight optional, 1..1000000
// Files over 1 MiB are rejected. Bad endpoint entries are skipped with a log line; the rest are
// used. A reload that fails to read or parse keeps the previous endpoints. Entries that
// disappear from the file are removed. `modelRewrites` is all or nothing: an invalid section
// is logged as an error and the previous rules stay, while the endpoints are still applied;
// objects earlier in the file take precedence over later ones (the reference: older objects).
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
#include "datastore/model_rewrites.h"

namespace epp::discovery {

inline constexpr std::string_view kFileDiscoveryType = "file-discovery";
inline constexpr size_t kMaxEndpointsFileBytes = 1 << 20;

// A source of endpoints (and of model rewrite rules, where it has them) that writes into the
// datastore. Start() does the first sync before returning; Stop() ends any background work.
// Both are called from one thread. The writers are borrowed and must outlive Stop().
class DiscoveryPlugin : public Plugin {
 public:
  using Plugin::Plugin;
  // `rewrites` may be null: rules the source finds are then ignored with a warning.
  virtual absl::Status Start(datastore::EndpointWriter& endpoints,
                             datastore::ModelRewriteWriter* rewrites) = 0;
  absl::Status Start(datastore::EndpointWriter& endpoints) { return Start(endpoints, nullptr); }
  virtual void Stop() = 0;
};

// Resolves a host name to a numeric address (first result). Blocking.
using Resolver = std::function<absl::StatusOr<std::string>(const std::string& host)>;
absl::StatusOr<std::string> ResolveHost(const std::string& host);

struct ParsedEndpoints {
  std::vector<datastore::Endpoint> endpoints;
  std::vector<std::string> skipped;  // one message per skipped entry, naming it and the field
  // The `modelRewrites` objects in file order (none when the key is absent or null), or, when
  // the section is invalid, an InvalidArgument naming the object, the rule and the field
  // ("modelRewrites[1] (canary): spec.rules[0].targets[2].weight: ...") and no objects.
  std::vector<datastore::ModelRewrite> model_rewrites;
  absl::Status model_rewrites_status;
};

// Parses the file contents. Errors only for an unreadable document (not YAML, no `endpoints`
// list, over the size cap); bad entries are reported in `skipped`, an invalid `modelRewrites`
// section in `model_rewrites_status`.
absl::StatusOr<ParsedEndpoints> ParseEndpointsFile(std::string_view text, const Resolver& resolver);

class FileDiscovery : public DiscoveryPlugin {
 public:
  // `poll_fallback_ms`: how often the file is re-read when no inotify event arrives (changes
  // inotify cannot see, such as a symlink target outside the watched directory).
  FileDiscovery(std::string name, std::string path, bool watch, Resolver resolver = ResolveHost,
                int poll_fallback_ms = 2000);
  ~FileDiscovery() override;
  std::string_view Type() const override { return kFileDiscoveryType; }

  // Loads the file once (error if it cannot be read or parsed; an invalid `modelRewrites`
  // section is not one), marks the pool ready, and starts the watcher thread when watchFile is
  // set.
  using DiscoveryPlugin::Start;
  absl::Status Start(datastore::EndpointWriter& endpoints,
                     datastore::ModelRewriteWriter* rewrites) override;
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
  void ApplyModelRewrites(ParsedEndpoints& parsed);

  const std::string path_;
  const bool watch_;
  const Resolver resolver_;
  const int poll_fallback_ms_;
  datastore::EndpointWriter* writer_ = nullptr;
  datastore::ModelRewriteWriter* rewrites_ = nullptr;
  size_t rewrite_count_ = 0;  // objects last applied, for the log
  std::string last_contents_;
  bool loaded_ = false;
  int stop_fd_ = -1;     // eventfd that wakes the watcher to stop
  int inotify_fd_ = -1;  // watch on the file's directory
  std::thread watcher_;
};

}  // namespace epp::discovery

#endif  // EPP_DISCOVERY_FILE_DISCOVERY_H_
