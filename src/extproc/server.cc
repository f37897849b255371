#include "extproc/server.h"

#include <deque>

#include "absl/base/thread_annotations.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "common/strings.h"
#include "extproc/protocol_keys.h"

namespace epp::extproc {
namespace {

// One stream. Reactions may run concurrently (read and write completions, cancellation), so
// the state is guarded by mu_. Each reaction decides under the lock and starts gRPC operations
// after releasing it, because gRPC may run the next reaction inline on this thread. Answers are
// queued in the same critical section that produced them, so no other reaction can see the
// handler finished while its last answers are still on their way to the queue.
class StreamReactor final
    : public grpc::ServerBidiReactor<pb::ProcessingRequest, pb::ProcessingResponse> {
 public:
  StreamReactor(const requestcontrol::Director& director, const StreamOptions& options,
                std::atomic<int64_t>& active)
      : handler_(director, options), active_(active) {
    active_.fetch_add(1);
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Half-close or reset: nothing more to read; finish once the queue drains.
      {
        MutexLock lock(&mu_);
        read_closed_ = true;
      }
      MaybeFinish();
      return;
    }
    const pb::ProcessingResponse* first = nullptr;
    bool read_more = false;
    {
      MutexLock lock(&mu_);
      std::vector<pb::ProcessingResponse> answers;
      absl::Status s = handler_.OnMessage(in_, answers);
      if (!s.ok()) {
        EPP_LOG_WARN("ext_proc stream: {}", SV(s.message()));
        error_ = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(s.message()));
      }
      if (!cancelled_ && !write_failed_ && !finished_) {
        // std::deque keeps references to queued elements valid across push_back.
        for (auto& a : answers) queue_.push_back(std::move(a));
        if (!writing_ && !queue_.empty()) {
          writing_ = true;
          first = &queue_.front();
        }
      }
      // After an error or an immediate response nothing more will be answered: stop reading.
      read_more = s.ok() && !handler_.done() && !finished_;
    }
    // A large message (a BUFFERED body) must not stay allocated for the rest of the stream.
    if (in_.has_request_body() && in_.request_body().body().size() > kBodyChunkBytes) {
      in_ = pb::ProcessingRequest();
    }
    if (first != nullptr) StartWrite(first);
    if (read_more) {
      StartRead(&in_);
    } else {
      MaybeFinish();
    }
  }

  void OnWriteDone(bool ok) override {
    const pb::ProcessingResponse* next = nullptr;
    {
      MutexLock lock(&mu_);
      queue_.pop_front();
      if (!ok) {
        queue_.clear();  // the stream is broken; nothing else can be delivered
        write_failed_ = true;
      }
      if (!queue_.empty()) next = &queue_.front();
      writing_ = next != nullptr;
    }
    // Each answer is written without grpc::WriteOptions::set_buffer_hint(): with gRPC 1.51 a
    // hinted burst (header answer + body chunks) held the flush for up to a second at
    // concurrency 1 (bench/added_latency.py measured p99 1.07 s), so every write flushes.
    if (next != nullptr) {
      StartWrite(next);
    } else {
      MaybeFinish();
    }
  }

  void OnCancel() override {
    {
      MutexLock lock(&mu_);
      cancelled_ = true;
    }
    MaybeFinish();
  }

  void OnDone() override {
    active_.fetch_sub(1);
    delete this;
  }

 private:
  void MaybeFinish() {
    grpc::Status status;
    {
      MutexLock lock(&mu_);
      if (finished_ || writing_) return;
      bool over = read_closed_ || cancelled_ || write_failed_ || !error_.ok() || handler_.done();
      if (!over) return;
      finished_ = true;
      status = error_;
    }
    Finish(status);
  }

  Mutex mu_;
  StreamHandler handler_ ABSL_GUARDED_BY(mu_);
  pb::ProcessingRequest in_;  // owned by the single outstanding read
  std::deque<pb::ProcessingResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status error_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t>& active_;
};

}  // namespace

ExternalProcessorService::ExternalProcessorService(const requestcontrol::Director& director,
                                                   StreamOptions options)
    : director_(director), options_(options) {}

grpc::ServerBidiReactor<pb::ProcessingRequest, pb::ProcessingResponse>*
ExternalProcessorService::Process(grpc::CallbackServerContext* context) {
  return new StreamReactor(director_, options_, active_);
}

HealthService::HealthService(std::function<bool()> live, std::function<bool()> leader,
                             bool leader_election)
    : live_(std::move(live)), leader_(std::move(leader)), leader_election_(leader_election) {}

grpc::health::v1::HealthCheckResponse::ServingStatus HealthService::StatusFor(
    const std::string& service) const {
  using R = grpc::health::v1::HealthCheckResponse;
  if (!leader_election_) return live_() ? R::SERVING : R::NOT_SERVING;
  if (service == kLivenessServiceName) return R::SERVING;
  if (service.empty() || service == kReadinessServiceName || service == kExtProcServiceName) {
    return live_() && leader_() ? R::SERVING : R::NOT_SERVING;
  }
  return R::SERVICE_UNKNOWN;
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* context,
                                               const grpc::health::v1::HealthCheckRequest* request,
                                               grpc::health::v1::HealthCheckResponse* response) {
  response->set_status(StatusFor(request->service()));
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace epp::extproc
