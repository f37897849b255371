#include "requestcontrol/director.h"

#include <random>
#include <set>

#include "common/host_port.h"
#include "common/strings.h"

namespace epp::requestcontrol {
namespace {

std::string JoinDestinations(const std::vector<const datastore::Endpoint*>& endpoints) {
  std::string out;
  for (const datastore::Endpoint* e : endpoints) {
    if (!out.empty()) out.push_back(',');
    out.append(e->host_port);
  }
  return out;
}

}  // namespace

Director::Director(const datastore::Datastore& datastore, const scheduling::Scheduler& scheduler,
                   bool disable_subset_filter, const datastore::ModelRewriteStore* model_rewrites,
                   Admission admission)
    : datastore_(datastore),
      scheduler_(scheduler),
      disable_subset_filter_(disable_subset_filter),
      model_rewrites_(model_rewrites),
      admission_(admission) {}

void Director::ChooseTargetModel(const RequestInput& input, Decision& d) const {
  d.target_model =
      input.model_rewrite.empty() ? d.incoming_model : std::string(input.model_rewrite);
  if (model_rewrites_ == nullptr) return;
  auto rules = model_rewrites_->Get();
  datastore::ModelRewriteMatch m = rules->Find(d.incoming_model);
  if (!m) return;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  d.target_model = datastore::PickModelRewriteTarget(*m.rule, rng());
  d.model_rewrite_name = m.rewrite->name;
}

absl::StatusOr<std::vector<const datastore::Endpoint*>> Director::Candidates(
    const datastore::Snapshot& snapshot, const RequestInput& input) const {
  std::vector<const datastore::Endpoint*> out;
  out.reserve(snapshot.endpoints.size());
  if (!input.subset || disable_subset_filter_) {
    for (const auto& e : snapshot.endpoints) out.push_back(e.get());
  } else {
    // As the reference does, match on the IP only: every port of a listed IP qualifies.
    std::set<std::string_view> ips;
    for (const auto& s : *input.subset) ips.insert(HostOf(s));
    for (const auto& e : snapshot.endpoints) {
      if (ips.count(e->address) > 0) out.push_back(e.get());
    }
  }
  if (out.empty()) {
    if (input.subset && !disable_subset_filter_) {
      return absl::UnavailableError(StrCat("no endpoint in the pool matches the subset hint [",
                                           StrJoin(*input.subset, ","), "]"));
    }
    return absl::UnavailableError("no candidate endpoints in the pool");
  }
  return out;
}

absl::StatusOr<Decision> Director::HandleRequest(const RequestInput& input, std::string_view body,
                                                 size_t capacity) const {
  auto parsed = request::ParseRequest(request::ApiKindFromPath(input.path), body, capacity);
  if (!parsed.ok()) return parsed.status();

  Decision d;
  d.incoming_model = parsed->model;
  d.stream = parsed->stream;
  ChooseTargetModel(input, d);
  if (d.target_model != d.incoming_model) {
    d.rewritten_body = request::SpliceModel(body, parsed->model_token, d.target_model);
  }

  auto snapshot = datastore_.GetSnapshot();
  auto candidates = Candidates(*snapshot, input);
  if (!candidates.ok()) return candidates.status();
  if (admission_.objectives != nullptr && admission_.detector != nullptr &&
      admission_.objectives->Priority(input.objective) < 0 &&
      admission_.detector->Saturation(*candidates, nullptr) >= 1.0) {
    return absl::ResourceExhaustedError(
        StrCat("system saturated, sheddable request dropped (objective \"", input.objective,
               "\" has a negative priority)"));
  }

  scheduling::Request req;
  req.id = next_id_.fetch_add(1, std::memory_order_relaxed);
  req.pool = snapshot.get();
  req.request_id = input.request_id;
  req.target_model = d.target_model;
  // The original body: the parsed spans index into it (the prompt is the same in both).
  req.body = body;
  req.parsed = &*parsed;
  req.headers = input.headers;
  auto result = scheduler_.Schedule(req, *candidates);
  if (!result.ok()) {
    return absl::ResourceExhaustedError(
        StrCat("failed to find target endpoint: ", result.status().message()));
  }
  d.id = req.id;
  d.snapshot = std::move(snapshot);
  d.endpoints = result->Primary().target_endpoints;
  d.destination = JoinDestinations(d.endpoints);
  return d;
}

void Director::RequestComplete(uint64_t id, std::string_view primary_key) const {
  if (id == 0) return;
  scheduler_.Complete(id, primary_key);
}

absl::StatusOr<Decision> Director::HandleHeaderOnly(const RequestInput& input) const {
  auto snapshot = datastore_.GetSnapshot();
  if (snapshot->endpoints.empty()) {
    return absl::InternalError("no pods available in datastore");
  }
  auto candidates = Candidates(*snapshot, input);
  if (!candidates.ok()) return candidates.status();
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, candidates->size() - 1);
  Decision d;
  d.endpoints = {(*candidates)[pick(rng)]};
  d.snapshot = std::move(snapshot);
  d.destination = JoinDestinations(d.endpoints);
  return d;
}

}  // namespace epp::requestcontrol
