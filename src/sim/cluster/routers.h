// Routing policies the cluster simulator compares: epp's real scheduler built from an
// EndpointPickerConfig (any of our profiles), and baselines (round-robin as a Kubernetes Service
// gives, least-request as Envoy's LEAST_REQUEST does, random).
#ifndef EPP_SIM_CLUSTER_ROUTERS_H_
#define EPP_SIM_CLUSTER_ROUTERS_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "datastore/endpoint.h"
#include "loadgen/workload.h"

namespace epp::sim {

class Router {
 public:
  virtual ~Router() = default;
  virtual std::string Name() const = 0;
  // The server (0..n-1) for request `id` with OpenAI body `body` (request.arrival_s is its
  // virtual arrival time).
  virtual int Route(uint64_t id, const loadgen::WorkRequest& request, std::string_view body) = 0;
  // Request `id` produced its first token on `server` (its prefill is done).
  virtual void FirstToken(uint64_t id, int server) {}
  // The request finished on `server`.
  virtual void Completed(uint64_t id, int server) {}
  // The metrics a scrape of `server` just read (what epp's data layer would publish).
  virtual void Scraped(int server, const datastore::Metrics& m) {}
};

// Baselines.
std::unique_ptr<Router> MakeRoundRobinRouter(int servers);
std::unique_ptr<Router> MakeLeastRequestRouter(int servers, uint64_t seed);
std::unique_ptr<Router> MakeRandomRouter(int servers, uint64_t seed);

// epp's scheduler from config text (scheduling plugins only; no discovery or data layer: the
// simulator publishes each server's metrics as a scrape would). `name` labels reports.
absl::StatusOr<std::unique_ptr<Router>> MakeEppRouter(std::string name, int servers,
                                                      const std::string& config_yaml);

// Built-in epp profiles by name: "epp-default" (queue 2, KV cache 2, prefix 3), "epp-load-aware"
// (the same with prefix-cache-scorer mode load-aware), "epp-inflight" (the default plus
// token-load-scorer 2 over the picker's own in-flight tokens, threshold 200,000), "epp-random".
// Empty when unknown.
std::string EppProfileConfig(std::string_view name);

}  // namespace epp::sim

#endif  // EPP_SIM_CLUSTER_ROUTERS_H_
