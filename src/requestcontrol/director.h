// Director: turns one parsed request into a routing decision. Steps: model rewrite →
// candidates (pool snapshot, narrowed by the subset hint) → scheduling → destination list and
// the body to forward. Pure with respect to I/O: it reads the datastore and rewrite-rule
// snapshots and runs the scheduler, nothing else, so it is safe to call from a gRPC reaction.
//
// Model rewrite, in the reference's order: the `x-gateway-model-name-rewrite` header sets the
// target model first; then the InferenceModelRewrite rule for the *incoming* model, if one
// applies, picks the target (weighted random) and so wins over the header. The body's `model`
// is spliced only when the target differs from the incoming name.
#ifndef EPP_REQUESTCONTROL_DIRECTOR_H_
#define EPP_REQUESTCONTROL_DIRECTOR_H_

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "datastore/datastore.h"
#include "datastore/model_rewrites.h"
#include "datastore/objectives.h"
#include "request/openai_request.h"
#include "scheduling/scheduler.h"

namespace epp::requestcontrol {

struct RequestInput {
  std::string_view request_id;
  std::string_view path;
  const std::map<std::string, std::string, std::less<>>* headers = nullptr;  // lower-case keys
  // The `x-gateway-destination-endpoint-subset` hint: absent = whole pool; present (even
  // empty) = only these "ip:port" entries, matched by IP.
  std::optional<std::vector<std::string>> subset;
  std::string_view model_rewrite;  // from the rewrite header; empty = none
  std::string_view objective;      // the InferenceObjective header; empty = none
};

// Admission without flow control, as the reference does it: a request whose objective has a
// negative priority (sheddable) is rejected with 429 while its candidates are saturated
// (detector->Saturation >= 1.0). Requests without an objective, or with an unknown one, have
// priority 0 and are never shed.
struct Admission {
  const datastore::ObjectiveStore* objectives = nullptr;     // null: no shedding
  const scheduling::SaturationDetector* detector = nullptr;  // required with objectives
};

struct Decision {
  uint64_t id = 0;          // scheduling::Request::id; 0 when no scheduling cycle ran (header-only)
  std::string destination;  // "ip:port[,ip:port...]", primary first
  std::shared_ptr<const datastore::Snapshot> snapshot;  // keeps `endpoints` alive
  std::vector<const datastore::Endpoint*> endpoints;
  std::string incoming_model;      // the body's `model` as the client sent it
  std::string target_model;        // what the model server is sent (== incoming: no rewrite)
  std::string model_rewrite_name;  // the InferenceModelRewrite that chose target_model, if any
  std::optional<std::string> rewritten_body;  // set only when the body changed
  bool stream = false;
};

class Director {
 public:
  // Borrows all; they must outlive the director. `model_rewrites` may be null (no rules).
  Director(const datastore::Datastore& datastore, const scheduling::Scheduler& scheduler,
           bool disable_subset_filter = false,
           const datastore::ModelRewriteStore* model_rewrites = nullptr, Admission admission = {});

  // Decides for a request with a body. `body` must have `capacity` readable bytes (padding lets
  // the parser work in place). Errors: InvalidArgument (400) for a bad body, Unavailable (503)
  // when no candidate endpoint exists, ResourceExhausted (429) when scheduling finds none or
  // admission sheds the request.
  absl::StatusOr<Decision> HandleRequest(const RequestInput& input, std::string_view body,
                                         size_t capacity) const;

  // Decides for a request without a body (e.g. GET /v1/models): a random candidate. Errors:
  // Internal (500) when the pool is empty, Unavailable (503) when the subset hint matches none.
  absl::StatusOr<Decision> HandleHeaderOnly(const RequestInput& input) const;

  // Tells the scheduler's completion hooks that a request HandleRequest routed is over (its
  // response ended or its stream closed): Decision::id and the primary endpoint's Key(). Call
  // once per such decision; no-op for id 0.
  void RequestComplete(uint64_t id, std::string_view primary_key) const;

 private:
  absl::StatusOr<std::vector<const datastore::Endpoint*>> Candidates(
      const datastore::Snapshot& snapshot, const RequestInput& input) const;
  // Sets d.target_model (and d.model_rewrite_name) from the header and the rules.
  void ChooseTargetModel(const RequestInput& input, Decision& d) const;

  const datastore::Datastore& datastore_;
  const scheduling::Scheduler& scheduler_;
  const bool disable_subset_filter_;
  const datastore::ModelRewriteStore* const model_rewrites_;
  const Admission admission_;
  mutable std::atomic<uint64_t> next_id_{1};
};

}  // namespace epp::requestcontrol

#endif  // EPP_REQUESTCONTROL_DIRECTOR_H_
