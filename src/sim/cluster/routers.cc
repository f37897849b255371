#include "sim/cluster/routers.h"

#include <algorithm>

#include "common/status_macros.h"
#include "common/strings.h"
#include "config/endpoint_picker_config.h"
#include "request/openai_request.h"
#include "scheduling/plugins/register.h"
#include "scheduling/scheduler.h"

namespace epp::sim {

using loadgen::WorkRequest;

namespace {

class RoundRobinRouter : public Router {
 public:
  explicit RoundRobinRouter(int n) : n_(n) {}
  std::string Name() const override { return "round-robin"; }
  int Route(uint64_t, const WorkRequest&, std::string_view) override { return next_++ % n_; }

 private:
  int n_;
  int next_ = 0;
};

class RandomRouter : public Router {
 public:
  RandomRouter(int n, uint64_t seed) : pick_(0, n - 1), rng_(seed) {}
  std::string Name() const override { return "random"; }
  int Route(uint64_t, const WorkRequest&, std::string_view) override { return pick_(rng_); }

 private:
  std::uniform_int_distribution<int> pick_;
  std::mt19937_64 rng_;
};

// Envoy's LEAST_REQUEST: power of two choices over active requests.
class LeastRequestRouter : public Router {
 public:
  LeastRequestRouter(int n, uint64_t seed) : active_(static_cast<size_t>(n)), rng_(seed) {}
  std::string Name() const override { return "least-request"; }
  int Route(uint64_t, const WorkRequest&, std::string_view) override {
    std::uniform_int_distribution<int> pick(0, static_cast<int>(active_.size()) - 1);
    int a = pick(rng_), b = pick(rng_);
    int s = active_[static_cast<size_t>(b)] < active_[static_cast<size_t>(a)] ? b : a;
    ++active_[static_cast<size_t>(s)];
    return s;
  }
  void Completed(uint64_t, int server) override { --active_[static_cast<size_t>(server)]; }

 private:
  std::vector<int> active_;
  std::mt19937_64 rng_;
};

class EppRouter : public Router {
 public:
  EppRouter(std::string name, int n) : name_(std::move(name)) {
    for (int i = 0; i < n; ++i) {
      auto e = std::make_shared<datastore::Endpoint>(datastore::MakeEndpoint(
          StrCat("server-", i), "sim", StrCat("10.0.", i / 250, ".", i % 250 + 1), 8000));
      index_of_[e.get()] = i;
      pool_.endpoints.push_back(e);
      candidates_.push_back(e.get());
    }
    pool_.version = 1;
    pool_.pool_ready = true;
  }

  absl::Status Init(const std::string& yaml) {
    scheduling::RegisterSchedulingPlugins(registry_);
    ASSIGN_OR_RETURN(auto cfg, config::ParseEndpointPickerConfig(yaml));
    ASSIGN_OR_RETURN(plugins_, config::InstantiatePlugins(cfg, registry_));
    ASSIGN_OR_RETURN(scheduler_, scheduling::BuildScheduler(cfg, *plugins_, registry_));
    return absl::OkStatus();
  }

  std::string Name() const override { return name_; }

  int Route(uint64_t id, const WorkRequest& r, std::string_view body) override {
    body_.assign(body);
    body_.reserve(body_.size() + request::ParsePaddingBytes());
    auto parsed = request::ParseRequest(request::ApiKind::kCompletions, body_, body_.capacity());
    if (!parsed.ok()) return 0;
    scheduling::Request req;
    req.id = id;
    req.target_model = parsed->model;
    req.body = body_;
    req.parsed = &*parsed;
    req.pool = &pool_;
    auto result = scheduler_->Schedule(req, candidates_);
    if (!result.ok() || result->Primary().target_endpoints.empty()) return 0;
    return index_of_.at(result->Primary().target_endpoints.front());
  }

  void Completed(uint64_t id, int server) override {
    scheduler_->Complete(id, candidates_[static_cast<size_t>(server)]->Key());
  }

  void Scraped(int server, const datastore::Metrics& m) override {
    candidates_[static_cast<size_t>(server)]->metrics->Store(
        std::make_shared<const datastore::Metrics>(m));
  }

 private:
  std::string name_;
  PluginRegistry registry_;
  std::unique_ptr<config::PluginSet> plugins_;
  std::unique_ptr<scheduling::Scheduler> scheduler_;
  datastore::Snapshot pool_;
  std::vector<const datastore::Endpoint*> candidates_;
  std::map<const datastore::Endpoint*, int> index_of_;
  std::string body_;
};

constexpr char kHeader[] =
    "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n";

}  // namespace

std::unique_ptr<Router> MakeRoundRobinRouter(int servers) {
  return std::make_unique<RoundRobinRouter>(servers);
}
std::unique_ptr<Router> MakeLeastRequestRouter(int servers, uint64_t seed) {
  return std::make_unique<LeastRequestRouter>(servers, seed);
}
std::unique_ptr<Router> MakeRandomRouter(int servers, uint64_t seed) {
  return std::make_unique<RandomRouter>(servers, seed);
}

absl::StatusOr<std::unique_ptr<Router>> MakeEppRouter(std::string name, int servers,
                                                      const std::string& config_yaml) {
  auto r = std::make_unique<EppRouter>(std::move(name), servers);
  RETURN_IF_ERROR(r->Init(config_yaml));
  return r;
}

std::string EppProfileConfig(std::string_view name) {
  if (name == "epp-default") return StrCat(kHeader, "plugins: []\n");
  if (name == "epp-random") return StrCat(kHeader, "plugins:\n- type: random-picker\n");
  if (name == "epp-load-aware") {
    return StrCat(kHeader,
                  "plugins:\n- type: queue-scorer\n- type: kv-cache-utilization-scorer\n"
                  "- type: prefix-cache-scorer\n  parameters: {mode: load-aware}\n"
                  "schedulingProfiles:\n- name: default\n  plugins:\n"
                  "  - {pluginRef: queue-scorer, weight: 2}\n"
                  "  - {pluginRef: kv-cache-utilization-scorer, weight: 2}\n"
                  "  - {pluginRef: prefix-cache-scorer, weight: 3}\n");
  }
  if (name == "epp-inflight") {
    return StrCat(kHeader,
                  "plugins:\n- type: queue-scorer\n- type: kv-cache-utilization-scorer\n"
                  "- type: prefix-cache-scorer\n"
                  "- type: token-load-scorer\n  parameters: {queueThresholdTokens: 200000}\n"
                  "schedulingProfiles:\n- name: default\n  plugins:\n"
                  "  - {pluginRef: queue-scorer, weight: 2}\n"
                  "  - {pluginRef: kv-cache-utilization-scorer, weight: 2}\n"
                  "  - {pluginRef: prefix-cache-scorer, weight: 3}\n"
                  "  - {pluginRef: token-load-scorer, weight: 2}\n");
  }
  return "";
}

}  // namespace epp::sim
