#include "scheduling/plugins/inflight_load_producer.h"

#include "common/status_macros.h"

namespace epp::scheduling {

int64_t EstimatePromptTokens(const Request& request) {
  if (request.parsed == nullptr) return 0;
  return static_cast<int64_t>((request.parsed->prompt.length + 3) / 4);
}

InflightLoadProducer::InflightLoadProducer(std::string name) : Plugin(std::move(name)) {}

void InflightLoadProducer::Produce(CycleState& state, const Request& request,
                                   std::span<const EndpointRef> candidates) {
  auto info = std::make_unique<InflightLoadInfo>();
  info->request_tokens = EstimatePromptTokens(request);
  {
    MutexLock lock(&mu_);
    if (!by_endpoint_.empty()) {
      for (EndpointRef e : candidates) {
        auto it = by_endpoint_.find(e->Key());
        if (it != by_endpoint_.end()) info->load[e] = it->second;
      }
    }
  }
  state.Write(std::string(kInflightLoadKey), std::move(info));
}

void InflightLoadProducer::PreRequest(CycleState&, const Request& request,
                                      const SchedulingResult& result) {
  const auto& targets = result.Primary().target_endpoints;
  if (targets.empty()) return;
  std::string key = targets.front()->Key();
  int64_t tokens = EstimatePromptTokens(request);
  MutexLock lock(&mu_);
  InflightLoad& l = by_endpoint_[key];
  l.requests += 1;
  l.tokens += tokens;
  by_request_[request.id] = Routed{std::move(key), tokens};
}

void InflightLoadProducer::RequestComplete(uint64_t request_id, std::string_view) {
  MutexLock lock(&mu_);
  auto it = by_request_.find(request_id);
  if (it == by_request_.end()) return;
  auto e = by_endpoint_.find(it->second.endpoint_key);
  if (e != by_endpoint_.end()) {
    e->second.requests -= 1;
    e->second.tokens -= it->second.tokens;
    if (e->second.requests <= 0) by_endpoint_.erase(e);
  }
  by_request_.erase(it);
}

InflightLoad InflightLoadProducer::LoadOf(const std::string& endpoint_key) const {
  MutexLock lock(&mu_);
  auto it = by_endpoint_.find(endpoint_key);
  return it == by_endpoint_.end() ? InflightLoad{} : it->second;
}

absl::StatusOr<std::unique_ptr<Plugin>> InflightLoadProducer::Create(const std::string& name,
                                                                     const YAML::Node& params) {
  ParamReader reader(params);
  RETURN_IF_ERROR(reader.Finish());
  return std::make_unique<InflightLoadProducer>(name);
}

}  // namespace epp::scheduling
