#include "discovery/file_discovery.h"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/host_port.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace epp::discovery {
namespace {

absl::StatusOr<std::string> ReadCapped(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(StrCat("cannot open endpoints file ", path));
  std::string out(kMaxEndpointsFileBytes + 1, '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  if (out.size() > kMaxEndpointsFileBytes) {
    return absl::InvalidArgumentError(
        StrCat("endpoints file ", path, " is larger than ", kMaxEndpointsFileBytes, " bytes"));
  }
  return out;
}

absl::StatusOr<uint16_t> ParsePort(const YAML::Node& n) {
  if (!n || !n.IsScalar()) return absl::InvalidArgumentError("port is required");
  const std::string& s = n.Scalar();
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v == 0 || v > 65535) {
    return absl::InvalidArgumentError(StrCat("port \"", s, "\" is not in 1..65535"));
  }
  return static_cast<uint16_t>(v);
}

// --- modelRewrites -------------------------------------------------------------------------
// Strict decoding: unknown fields are errors, as the API server would reject them. Every
// error names the object (index and name) and the field path inside it.

// "<where>: <field>: <why>"; `field` empty for the object itself.
absl::Status RewriteError(std::string_view where, std::string_view field, std::string_view why) {
  if (field.empty()) return absl::InvalidArgumentError(StrCat(where, ": ", why));
  return absl::InvalidArgumentError(StrCat(where, ": ", field, ": ", why));
}

bool NonEmptyScalar(const YAML::Node& n) { return n && n.IsScalar() && !n.Scalar().empty(); }

// Checks that `node` is a map with only `allowed` keys.
absl::Status CheckMap(const YAML::Node& node, std::initializer_list<std::string_view> allowed,
                      std::string_view where, std::string_view field) {
  if (!node || !node.IsMap()) return RewriteError(where, field, "must be a map");
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return RewriteError(where, field.empty() ? key : StrCat(field, ".", key), "unknown field");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<datastore::ModelRewriteRule> ParseRewriteRule(const YAML::Node& n,
                                                             std::string_view where,
                                                             const std::string& at) {
  RETURN_IF_ERROR(CheckMap(n, {"matches", "targets"}, where, at));
  datastore::ModelRewriteRule rule;
  const YAML::Node matches = n["matches"];
  if (matches && !matches.IsNull()) {
    if (!matches.IsSequence()) return RewriteError(where, StrCat(at, ".matches"), "must be a list");
    for (size_t m = 0; m < matches.size(); ++m) {
      const std::string mat = StrCat(at, ".matches[", m, "]");
      RETURN_IF_ERROR(CheckMap(matches[m], {"model"}, where, mat));
      const YAML::Node model = matches[m]["model"];
      RETURN_IF_ERROR(CheckMap(model, {"type", "value"}, where, StrCat(mat, ".model")));
      const YAML::Node type = model["type"];
      if (type && !type.IsNull() && !(type.IsScalar() && type.Scalar() == "Exact")) {
        return RewriteError(
            where, StrCat(mat, ".model.type"),
            StrCat("\"", type.IsScalar() ? type.Scalar() : "", "\" is not supported (only Exact)"));
      }
      if (!NonEmptyScalar(model["value"])) {
        return RewriteError(where, StrCat(mat, ".model.value"), "a non-empty string is required");
      }
      rule.matches.push_back(model["value"].Scalar());
    }
  }
  const YAML::Node targets = n["targets"];
  if (targets && !targets.IsNull()) {
    if (!targets.IsSequence()) return RewriteError(where, StrCat(at, ".targets"), "must be a list");
    for (size_t t = 0; t < targets.size(); ++t) {
      const std::string tat = StrCat(at, ".targets[", t, "]");
      RETURN_IF_ERROR(CheckMap(targets[t], {"modelRewrite", "weight"}, where, tat));
      datastore::ModelRewriteTarget target;
      if (!NonEmptyScalar(targets[t]["modelRewrite"])) {
        return RewriteError(where, StrCat(tat, ".modelRewrite"), "a non-empty string is required");
      }
      target.model = targets[t]["modelRewrite"].Scalar();
      const YAML::Node w = targets[t]["weight"];
      if (w && !w.IsNull()) {
        const std::string ws = w.IsScalar() ? w.Scalar() : "";
        uint32_t v = 0;
        auto [ptr, ec] = std::from_chars(ws.data(), ws.data() + ws.size(), v);
        if (ws.empty() || ec != std::errc() || ptr != ws.data() + ws.size() ||
            v > datastore::kMaxModelRewriteWeight) {
          return RewriteError(
              where, StrCat(tat, ".weight"),
              StrCat("\"", ws, "\" is not an integer in 1..", datastore::kMaxModelRewriteWeight));
        }
        target.weight = v;  // 0 reads as "not set", as the reference's int32 field does
      }
      rule.targets.push_back(std::move(target));
    }
  }
  return rule;
}

absl::StatusOr<datastore::ModelRewrite> ParseRewriteObject(const YAML::Node& o,
                                                           std::string& where) {
  // A Kubernetes manifest pastes in as it is: apiVersion, kind, metadata and status are read
  // (name, kind) or ignored.
  RETURN_IF_ERROR(
      CheckMap(o, {"name", "apiVersion", "kind", "metadata", "spec", "status"}, where, ""));
  datastore::ModelRewrite rw;
  if (o["name"] && !o["name"].IsNull()) {
    if (!NonEmptyScalar(o["name"])) return RewriteError(where, "name", "must be a string");
    rw.name = o["name"].Scalar();
  }
  const YAML::Node meta = o["metadata"];
  if (meta && !meta.IsNull()) {
    if (!meta.IsMap()) return RewriteError(where, "metadata", "must be a map");
    if (meta["name"] && !meta["name"].IsNull()) {
      if (!NonEmptyScalar(meta["name"])) {
        return RewriteError(where, "metadata.name", "must be a string");
      }
      if (!rw.name.empty() && rw.name != meta["name"].Scalar()) {
        return RewriteError(
            where, "metadata.name",
            StrCat("\"", meta["name"].Scalar(), "\" differs from name \"", rw.name, "\""));
      }
      rw.name = meta["name"].Scalar();
    }
  }
  if (rw.name.empty()) return RewriteError(where, "name", "is required (or metadata.name)");
  where = StrCat(where, " (", rw.name, ")");
  const YAML::Node kind = o["kind"];
  if (kind && !kind.IsNull() && !(kind.IsScalar() && kind.Scalar() == "InferenceModelRewrite")) {
    return RewriteError(where, "kind", "must be InferenceModelRewrite");
  }
  const YAML::Node spec = o["spec"];
  if (!spec || spec.IsNull()) return RewriteError(where, "spec", "is required");
  RETURN_IF_ERROR(CheckMap(spec, {"poolRef", "rules"}, where, "spec"));
  const YAML::Node rules = spec["rules"];
  if (rules && !rules.IsNull()) {
    if (!rules.IsSequence()) return RewriteError(where, "spec.rules", "must be a list");
    for (size_t r = 0; r < rules.size(); ++r) {
      ASSIGN_OR_RETURN(auto rule, ParseRewriteRule(rules[r], where, StrCat("spec.rules[", r, "]")));
      rw.rules.push_back(std::move(rule));
    }
  }
  if (absl::Status s = datastore::ValidateModelRewrite(rw); !s.ok()) {
    return absl::InvalidArgumentError(StrCat(where, ": ", s.message()));
  }
  return rw;
}

absl::StatusOr<std::vector<datastore::ModelRewrite>> ParseModelRewrites(const YAML::Node& list) {
  std::vector<datastore::ModelRewrite> out;
  if (!list || list.IsNull()) return out;
  if (!list.IsSequence()) return absl::InvalidArgumentError("modelRewrites: must be a list");
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = StrCat("modelRewrites[", i, "]");
    ASSIGN_OR_RETURN(auto rw, ParseRewriteObject(list[i], where));
    if (!names.insert(rw.name).second) {
      return absl::InvalidArgumentError(
          StrCat(where, ": name: \"", rw.name, "\" is used by an earlier object"));
    }
    out.push_back(std::move(rw));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> ResolveHost(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    return absl::UnavailableError(StrCat("cannot resolve \"", host, "\": ", gai_strerror(rc)));
  }
  char buf[NI_MAXHOST];
  rc = getnameinfo(res->ai_addr, res->ai_addrlen, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST);
  freeaddrinfo(res);
  if (rc != 0) {
    return absl::UnavailableError(StrCat("cannot resolve \"", host, "\": ", gai_strerror(rc)));
  }
  return std::string(buf);
}

absl::StatusOr<ParsedEndpoints> ParseEndpointsFile(std::string_view text,
                                                   const Resolver& resolver) {
  if (text.size() > kMaxEndpointsFileBytes) {
    return absl::InvalidArgumentError(
        StrCat("endpoints file is larger than ", kMaxEndpointsFileBytes, " bytes"));
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat("endpoints file is not valid YAML: ", e.what()));
  }
  if (!root.IsMap() || !root["endpoints"]) {
    return absl::InvalidArgumentError("endpoints file has no \"endpoints\" list");
  }
  const YAML::Node list = root["endpoints"];
  ParsedEndpoints out;
  try {
    auto rewrites = ParseModelRewrites(root["modelRewrites"]);
    if (rewrites.ok()) {
      out.model_rewrites = std::move(*rewrites);
    } else {
      out.model_rewrites_status = rewrites.status();
    }
  } catch (const YAML::Exception& e) {
    out.model_rewrites_status =
        absl::InvalidArgumentError(StrCat("modelRewrites: cannot be read: ", e.what()));
  }
  if (list.IsNull()) return out;
  if (!list.IsSequence()) {
    return absl::InvalidArgumentError("endpoints file: \"endpoints\" must be a list");
  }
  std::set<std::string> keys;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node e = list[i];
    std::string where = StrCat("endpoints[", i, "]");
    auto skip = [&](std::string_view why) { out.skipped.push_back(StrCat(where, ": ", why)); };
    if (!e.IsMap()) {
      skip("must be a map");
      continue;
    }
    std::string bad_field;
    for (const auto& kv : e) {
      std::string k = kv.first.Scalar();
      if (k != "name" && k != "namespace" && k != "address" && k != "port" && k != "labels") {
        bad_field = k;
      }
    }
    if (!bad_field.empty()) {
      skip(StrCat("unknown field \"", bad_field, "\""));
      continue;
    }
    if (!e["name"] || !e["name"].IsScalar() || e["name"].Scalar().empty()) {
      skip("name is required");
      continue;
    }
    std::string name = e["name"].Scalar();
    where = StrCat(where, " (", name, ")");
    std::string ns = "default";
    if (e["namespace"]) {
      if (!e["namespace"].IsScalar()) {
        skip("namespace must be a string");
        continue;
      }
      if (!e["namespace"].Scalar().empty()) ns = e["namespace"].Scalar();
    }
    if (!e["address"] || !e["address"].IsScalar() || e["address"].Scalar().empty()) {
      skip("address is required");
      continue;
    }
    std::string address = e["address"].Scalar();
    if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
      address = address.substr(1, address.size() - 2);
    }
    auto port = ParsePort(e["port"]);
    if (!port.ok()) {
      skip(SV(port.status().message()));
      continue;
    }
    std::map<std::string, std::string> labels;
    if (e["labels"] && !e["labels"].IsNull()) {
      if (!e["labels"].IsMap()) {
        skip("labels must be a map of strings");
        continue;
      }
      bool ok = true;
      for (const auto& kv : e["labels"]) {
        if (!kv.second.IsScalar())
          ok = false;
        else
          labels[kv.first.Scalar()] = kv.second.Scalar();
      }
      if (!ok) {
        skip("labels must be a map of strings");
        continue;
      }
    }
    if (!IsIpLiteral(address)) {
      auto resolved = resolver(address);
      if (!resolved.ok()) {
        skip(SV(resolved.status().message()));
        continue;
      }
      address = *resolved;
    }
    if (!keys.insert(ns + "/" + name).second) {
      skip(StrCat("duplicate endpoint ", ns, "/", name));
      continue;
    }
    out.endpoints.push_back(datastore::MakeEndpoint(name, ns, address, *port, std::move(labels)));
  }
  return out;
}

FileDiscovery::FileDiscovery(std::string name, std::string path, bool watch, Resolver resolver,
                             int poll_fallback_ms)
    : DiscoveryPlugin(std::move(name)),
      path_(std::move(path)),
      watch_(watch),
      resolver_(std::move(resolver)),
      poll_fallback_ms_(poll_fallback_ms) {}

FileDiscovery::~FileDiscovery() { Stop(); }

absl::Status FileDiscovery::Reload() {
  ASSIGN_OR_RETURN(std::string contents, ReadCapped(path_));
  if (loaded_ && contents == last_contents_) return absl::OkStatus();
  auto parsed = ParseEndpointsFile(contents, resolver_);
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(), StrCat(path_, ": ", parsed.status().message()));
  }
  for (const auto& msg : parsed->skipped) {
    EPP_LOG_WARN("file-discovery {}: skipping {}", path_, msg);
  }
  EPP_LOG_INFO("file-discovery {}: {} endpoints", path_, parsed->endpoints.size());
  writer_->ReplaceAll(std::move(parsed->endpoints));
  ApplyModelRewrites(*parsed);
  last_contents_ = std::move(contents);
  loaded_ = true;
  return absl::OkStatus();
}

void FileDiscovery::ApplyModelRewrites(ParsedEndpoints& parsed) {
  if (rewrites_ == nullptr) {
    if (!parsed.model_rewrites.empty() || !parsed.model_rewrites_status.ok()) {
      EPP_LOG_WARN("file-discovery {}: modelRewrites ignored (no rewrite store was given)", path_);
    }
    return;
  }
  // Logged here, once per change of the file (an unchanged file is not re-read).
  absl::Status s = parsed.model_rewrites_status;
  const size_t n = parsed.model_rewrites.size();
  if (s.ok()) s = rewrites_->ReplaceModelRewrites(std::move(parsed.model_rewrites));
  if (!s.ok()) {
    EPP_LOG_ERROR(
        "file-discovery {}: invalid modelRewrites, keeping the previous {} rewrite "
        "objects: {}",
        path_, rewrite_count_, SV(s.message()));
    return;
  }
  if (n > 0 || rewrite_count_ > 0) {
    EPP_LOG_INFO("file-discovery {}: {} model rewrite objects", path_, n);
  }
  rewrite_count_ = n;
}

absl::Status FileDiscovery::Start(datastore::EndpointWriter& endpoints,
                                  datastore::ModelRewriteWriter* rewrites) {
  if (writer_ != nullptr) return absl::FailedPreconditionError("file-discovery: started twice");
  writer_ = &endpoints;
  rewrites_ = rewrites;
  // The watch is set up before the first read, so a change made right after Start() returns
  // is an inotify event rather than something only the fallback poll notices.
  if (watch_) RETURN_IF_ERROR(StartWatch());
  if (absl::Status s = Reload(); !s.ok()) {
    StopWatch();
    writer_ = nullptr;  // a failed start may be retried
    rewrites_ = nullptr;
    return s;
  }
  writer_->SetPoolReady(true);
  if (watch_) watcher_ = std::thread([this] { WatchLoop(); });
  return absl::OkStatus();
}

absl::Status FileDiscovery::StartWatch() {
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return absl::InternalError("file-discovery: eventfd failed");
  // Watch the directory, not the file: editors and Kubernetes replace files by rename or by
  // swapping a symlink, which a watch on the old inode would never report.
  std::string dir = ".";
  size_t slash = path_.rfind('/');
  if (slash != std::string::npos) dir = slash == 0 ? "/" : path_.substr(0, slash);
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  // No IN_MODIFY: it fires mid-write, and a file cut between entries is still valid YAML.
  uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;
  if (inotify_fd_ < 0 || inotify_add_watch(inotify_fd_, dir.c_str(), mask) < 0) {
    EPP_LOG_WARN("file-discovery: cannot watch {}; polling every {} ms", dir, poll_fallback_ms_);
  }
  return absl::OkStatus();
}

void FileDiscovery::StopWatch() {
  if (stop_fd_ >= 0) close(stop_fd_);
  if (inotify_fd_ >= 0) close(inotify_fd_);
  stop_fd_ = -1;
  inotify_fd_ = -1;
}

void FileDiscovery::Stop() {
  if (watcher_.joinable()) {
    uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) < 0) {
      EPP_LOG_ERROR("file-discovery: cannot signal the watcher to stop");
    }
    watcher_.join();
  }
  StopWatch();
}

void FileDiscovery::WatchLoop() {
  const int in_fd = inotify_fd_;
  std::string last_error;
  while (true) {
    pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {in_fd, POLLIN, 0}};
    int n = poll(fds, in_fd >= 0 ? 2 : 1, poll_fallback_ms_);
    if (n > 0 && (fds[0].revents & POLLIN)) break;
    if (n > 0 && in_fd >= 0 && (fds[1].revents & POLLIN)) {
      char buf[4096];
      while (read(in_fd, buf, sizeof(buf)) > 0) {
      }
    }
    absl::Status s = Reload();
    // Log an error once when it starts, and once when it clears, not on every poll.
    std::string err = s.ok() ? "" : std::string(s.message());
    if (err != last_error) {
      if (s.ok()) {
        EPP_LOG_INFO("file-discovery {}: reading works again", path_);
      } else {
        EPP_LOG_ERROR("file-discovery: {} (keeping the previous endpoints)", err);
      }
      last_error = err;
    }
  }
}

absl::StatusOr<std::unique_ptr<Plugin>> FileDiscovery::Create(const std::string& name,
                                                              const YAML::Node& params) {
  ParamReader reader(params);
  std::string path = reader.String("path", "");
  bool watch = reader.Bool("watchFile", true);
  RETURN_IF_ERROR(reader.Finish());
  if (path.empty()) return absl::InvalidArgumentError("parameter \"path\" is required");
  return std::make_unique<FileDiscovery>(name, path, watch);
}

}  // namespace epp::discovery
