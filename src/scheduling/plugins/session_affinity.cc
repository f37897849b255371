#include "scheduling/plugins/session_affinity.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/status_macros.h"
#include "common/strings.h"

namespace epp::scheduling {
namespace {

constexpr double kMaxTtlSeconds = 365.0 * 24 * 3600;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// e->Key() == key, without building the key.
bool HasKey(EndpointRef e, std::string_view key) {
  return key.size() == e->ns.size() + 1 + e->name.size() && key.starts_with(e->ns) &&
         key[e->ns.size()] == '/' && key.ends_with(e->name);
}

absl::Status ParseSources(const YAML::Node& node, std::vector<std::string>& headers) {
  if (!node.IsSequence() || node.size() == 0) {
    return absl::InvalidArgumentError(
        "parameter \"sessionIdConfig.sources\" must be a non-empty list of {header: NAME}");
  }
  headers.clear();
  for (const auto& item : node) {
    if (item.IsMap() && item.size() == 1 && item["attribute"]) {
      return absl::InvalidArgumentError(
          "parameter \"sessionIdConfig.sources\": attribute sources are not supported (this "
          "build has no request attributes); use {header: NAME}");
    }
    if (!item.IsMap() || item.size() != 1 || !item["header"] || !item["header"].IsScalar() ||
        item["header"].Scalar().empty()) {
      return absl::InvalidArgumentError(
          "parameter \"sessionIdConfig.sources\": each source must be {header: NAME}");
    }
    headers.push_back(Lower(item["header"].Scalar()));
  }
  return absl::OkStatus();
}

absl::Status ParseSessionIdConfig(const YAML::Node& node, SessionAffinityParams& p) {
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) {
    return absl::InvalidArgumentError("parameter \"sessionIdConfig\" must be a map");
  }
  YAML::Node rest = YAML::Clone(node);
  if (node["sources"]) {
    RETURN_IF_ERROR(ParseSources(node["sources"], p.headers));
    rest.remove("sources");
  }
  ParamReader reader(rest);
  double ttl = reader.Double("evictionTtlSeconds", 300);
  double sweep = reader.Double("evictionSweepSeconds", 10);
  p.max_sessions = reader.Int("maxSessions", p.max_sessions);
  absl::Status status = reader.Finish();
  if (!status.ok()) {
    return absl::InvalidArgumentError(StrCat("sessionIdConfig: ", SV(status.message())));
  }
  if (!(ttl > 0 && ttl <= kMaxTtlSeconds)) {
    return absl::InvalidArgumentError(
        "parameter \"sessionIdConfig.evictionTtlSeconds\" must be in (0, 31536000]");
  }
  if (!(sweep > 0)) {
    return absl::InvalidArgumentError(
        "parameter \"sessionIdConfig.evictionSweepSeconds\" must be > 0");
  }
  if (p.max_sessions <= 0) {
    return absl::InvalidArgumentError("parameter \"sessionIdConfig.maxSessions\" must be > 0");
  }
  p.ttl = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(ttl));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SessionAffinityParams> ParseSessionAffinityParams(const YAML::Node& params) {
  SessionAffinityParams p;
  // The nested maps are read by hand; the reader checks the flat keys and rejects unknown ones.
  const bool is_map = params && params.IsMap();
  YAML::Node flat = is_map ? YAML::Clone(params) : params;
  YAML::Node session_id_config;  // null unless given
  if (is_map) {
    if (params["encodedEndpointHeaderConfig"]) {
      return absl::InvalidArgumentError(
          "parameter \"encodedEndpointHeaderConfig\": the encoded_endpoint_header strategy is "
          "not supported yet (it needs response-header mutation); use strategy: session_id");
    }
    if (params["sessionIdConfig"]) {
      session_id_config = YAML::Clone(params["sessionIdConfig"]);
      flat.remove("sessionIdConfig");
    }
  }
  ParamReader reader(flat);
  std::string strategy = reader.String("strategy", "session_id");
  p.profile_name = reader.String("profileName", "");
  RETURN_IF_ERROR(reader.Finish());
  if (strategy == "encoded_endpoint_header") {
    return absl::InvalidArgumentError(
        "parameter \"strategy\": encoded_endpoint_header is not supported yet (it needs "
        "response-header mutation); use session_id");
  }
  if (strategy != "session_id") {
    return absl::InvalidArgumentError(
        StrCat("parameter \"strategy\" must be \"session_id\"; got \"", strategy, "\""));
  }
  RETURN_IF_ERROR(ParseSessionIdConfig(session_id_config, p));
  return p;
}

SessionBindings::SessionBindings(SessionAffinityParams params, MonotonicClock now)
    : params_(std::move(params)),
      now_(std::move(now)),
      bindings_(static_cast<size_t>(params_.max_sessions)) {}

std::optional<std::string_view> SessionBindings::SessionId(const Request& request) const {
  if (request.headers == nullptr) return std::nullopt;
  for (const std::string& h : params_.headers) {
    auto it = request.headers->find(h);
    if (it == request.headers->end() || it->second.empty()) continue;
    if (it->second.size() > kMaxSessionIdBytes) return std::nullopt;
    return std::string_view(it->second);
  }
  return std::nullopt;
}

std::string SessionBindings::BoundEndpoint(std::string_view session_id) const {
  const auto now = now_();
  MutexLock lock(&mu_);
  const Binding* b = bindings_.Get(session_id);
  if (b == nullptr || b->expires <= now) return "";
  return b->endpoint_key;
}

EndpointRef SessionBindings::BoundCandidate(const Request& request,
                                            std::span<const EndpointRef> candidates) const {
  auto id = SessionId(request);
  if (!id) return nullptr;
  std::string key = BoundEndpoint(*id);
  if (key.empty()) return nullptr;
  for (EndpointRef e : candidates) {
    if (HasKey(e, key)) return e;
  }
  return nullptr;
}

void SessionBindings::PreRequest(CycleState&, const Request& request,
                                 const SchedulingResult& result) {
  auto id = SessionId(request);
  if (!id) return;
  const ProfileResult* profile = nullptr;
  if (params_.profile_name.empty()) {
    auto it = result.profile_results.find(result.primary_profile);
    if (it != result.profile_results.end()) profile = &it->second;
  } else {
    auto it = result.profile_results.find(params_.profile_name);
    if (it != result.profile_results.end()) profile = &it->second;
  }
  if (profile == nullptr || profile->target_endpoints.empty()) return;
  Binding binding{profile->target_endpoints.front()->Key(), {}};
  const auto now = now_();
  binding.expires =
      now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(params_.ttl);
  MutexLock lock(&mu_);
  bindings_.DropOldestWhile([now](const Binding& b) { return b.expires <= now; });
  bindings_.Put(*id, std::move(binding));
}

size_t SessionBindings::sessions() const {
  MutexLock lock(&mu_);
  return bindings_.size();
}

SessionAffinityScorer::SessionAffinityScorer(std::string name, SessionAffinityParams params,
                                             MonotonicClock now)
    : Scorer(std::move(name)), SessionBindings(std::move(params), std::move(now)) {}

void SessionAffinityScorer::Score(CycleState&, const Request& request,
                                  std::span<const EndpointRef> candidates,
                                  std::span<double> scores) {
  EndpointRef bound = BoundCandidate(request, candidates);
  for (size_t i = 0; i < candidates.size(); ++i) {
    scores[i] = candidates[i] == bound ? 1.0 : 0.0;
  }
}

absl::StatusOr<std::unique_ptr<Plugin>> SessionAffinityScorer::Create(const std::string& name,
                                                                      const YAML::Node& params) {
  ASSIGN_OR_RETURN(SessionAffinityParams p, ParseSessionAffinityParams(params));
  return std::make_unique<SessionAffinityScorer>(name, std::move(p));
}

SessionAffinityFilter::SessionAffinityFilter(std::string name, SessionAffinityParams params,
                                             MonotonicClock now)
    : Filter(std::move(name)), SessionBindings(std::move(params), std::move(now)) {}

std::vector<EndpointRef> SessionAffinityFilter::FilterEndpoints(
    CycleState&, const Request& request, std::span<const EndpointRef> candidates) {
  EndpointRef bound = BoundCandidate(request, candidates);
  if (bound != nullptr) return {bound};
  return std::vector<EndpointRef>(candidates.begin(), candidates.end());
}

absl::StatusOr<std::unique_ptr<Plugin>> SessionAffinityFilter::Create(const std::string& name,
                                                                      const YAML::Node& params) {
  ASSIGN_OR_RETURN(SessionAffinityParams p, ParseSessionAffinityParams(params));
  return std::make_unique<SessionAffinityFilter>(name, std::move(p));
}

}  // namespace epp::scheduling
