// session-affinity-scorer and session-affinity-filter (llm-d), with llm-d's server-side
// "session_id" strategy: the client sends an opaque session identifier in a request header
// (default x-session-id); after each pick the plugin binds the session to the endpoint the
// request went to; later requests of the session prefer (scorer) or are pinned to (filter) that
// endpoint while it is a candidate.
//
//   session-affinity-scorer  1.0 for the bound endpoint, 0 for every other candidate; 0 for all
//                            when the request has no session, the session is unbound or
//                            expired, or its endpoint is not a candidate (as llm-d: an unbound
//                            session expresses no preference).
//   session-affinity-filter  only the bound endpoint when it is a candidate; otherwise every
//                            candidate, unchanged (never empties the list).
//
// Both then (PreRequest) bind the session to the request's first target endpoint — of the
// primary profile, or of profile `profileName` when set and present — refreshing the binding's
// lifetime, or moving it when the request went elsewhere.
//
// Parameters (llm-d's names; each plugin instance keeps its own bindings, so configure the
// scorer or the filter, not both):
//   strategy (string, "session_id"): only "session_id" here. llm-d's default,
//     "encoded_endpoint_header" (a stateless base64 endpoint token the plugin writes into the
//     x-session-token response header for the client to echo back), needs response-header
//     mutation that the stream handler does not offer yet; it and encodedEndpointHeaderConfig
//     are refused with an error rather than ignored.
//   profileName (string, ""): the profile whose first target is bound; "" = the primary.
//   sessionIdConfig (map):
//     sources (list, [{header: x-session-id}]): where the identifier is read, first non-empty
//       wins; each item is {header: NAME} (matched case-insensitively). llm-d's
//       {attribute: KEY} sources (request attributes from other plugins) are refused: this
//       build has no request attributes.
//     evictionTtlSeconds (number, 300, > 0): how long a binding lives after its last use.
//     evictionSweepSeconds (number, 10, > 0): accepted for compatibility; expired bindings are
//       purged as new ones are made (amortised, no sweeper thread), so it has no effect.
//     maxSessions (int, 100000, > 0; ours): most bindings kept; the least recently used goes
//       first when a new session would exceed it.
// Identifiers longer than 256 bytes are ignored (no affinity), which bounds memory to about
// maxSessions × (identifier + endpoint key + ~100 bytes).
//
// Thread-safe: one mutex per instance around the binding table, held for one map operation.
#ifndef EPP_SCHEDULING_PLUGINS_SESSION_AFFINITY_H_
#define EPP_SCHEDULING_PLUGINS_SESSION_AFFINITY_H_

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "scheduling/framework.h"
#include "scheduling/plugins/lru_map.h"

namespace epp::scheduling {

inline constexpr std::string_view kSessionAffinityScorerType = "session-affinity-scorer";
inline constexpr std::string_view kSessionAffinityFilterType = "session-affinity-filter";
// The request header llm-d's session_id strategy reads by default.
inline constexpr std::string_view kSessionIdHeader = "x-session-id";
inline constexpr size_t kMaxSessionIdBytes = 256;

// The clock binding lifetimes are measured with; injectable for tests.
using MonotonicClock = std::function<std::chrono::steady_clock::time_point()>;

struct SessionAffinityParams {
  std::string profile_name;                                         // "" = primary profile
  std::vector<std::string> headers{std::string(kSessionIdHeader)};  // lower-case
  std::chrono::nanoseconds ttl = std::chrono::seconds(300);
  int64_t max_sessions = 100'000;
};

// Reads the parameters above; errors name the parameter.
absl::StatusOr<SessionAffinityParams> ParseSessionAffinityParams(const YAML::Node& params);

// The state and hooks both plugins share: the binding table and the PreRequest that fills it.
class SessionBindings : public PreRequestHook {
 public:
  SessionBindings(SessionAffinityParams params, MonotonicClock now);

  // The request's session identifier (first configured header present and non-empty, at most
  // kMaxSessionIdBytes), or nullopt.
  std::optional<std::string_view> SessionId(const Request& request) const;
  // The Key() of the endpoint `session_id` is bound to, or "" when unbound or expired.
  std::string BoundEndpoint(std::string_view session_id) const;
  // The candidate bound to the request's session, or null.
  EndpointRef BoundCandidate(const Request& request, std::span<const EndpointRef> candidates) const;

  void PreRequest(CycleState& state, const Request& request,
                  const SchedulingResult& result) override;

  size_t sessions() const;
  const SessionAffinityParams& params() const { return params_; }

 private:
  struct Binding {
    std::string endpoint_key;
    std::chrono::steady_clock::time_point expires;
  };
  const SessionAffinityParams params_;
  const MonotonicClock now_;
  mutable Mutex mu_;
  // Most recently bound first; as every binding lives `ttl` from its last use, this is also the
  // order of expiry, so expired bindings are dropped from the least recent end.
  LruMap<Binding> bindings_ ABSL_GUARDED_BY(mu_);
};

class SessionAffinityScorer : public Scorer, public SessionBindings {
 public:
  SessionAffinityScorer(std::string name, SessionAffinityParams params,
                        MonotonicClock now = std::chrono::steady_clock::now);
  std::string_view Type() const override { return kSessionAffinityScorerType; }
  void Score(CycleState& state, const Request& request, std::span<const EndpointRef> candidates,
             std::span<double> scores) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);
};

class SessionAffinityFilter : public Filter, public SessionBindings {
 public:
  SessionAffinityFilter(std::string name, SessionAffinityParams params,
                        MonotonicClock now = std::chrono::steady_clock::now);
  std::string_view Type() const override { return kSessionAffinityFilterType; }
  std::vector<EndpointRef> FilterEndpoints(CycleState& state, const Request& request,
                                           std::span<const EndpointRef> candidates) override;
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        const YAML::Node& params);
};

}  // namespace epp::scheduling

#endif  // EPP_SCHEDULING_PLUGINS_SESSION_AFFINITY_H_
