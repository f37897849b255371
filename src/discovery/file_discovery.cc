#include "discovery/file_discovery.h"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

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
  last_contents_ = std::move(contents);
  loaded_ = true;
  return absl::OkStatus();
}

absl::Status FileDiscovery::Start(datastore::EndpointWriter& writer) {
  if (writer_ != nullptr) return absl::FailedPreconditionError("file-discovery: started twice");
  writer_ = &writer;
  // The watch is set up before the first read, so a change made right after Start() returns
  // is an inotify event rather than something only the fallback poll notices.
  if (watch_) RETURN_IF_ERROR(StartWatch());
  if (absl::Status s = Reload(); !s.ok()) {
    StopWatch();
    writer_ = nullptr;  // a failed start may be retried
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
