// The gRPC face of epp: the ExternalProcessor service (one callback reactor per stream, wrapping
// a StreamHandler) and the grpc.health.v1 service with the reference semantics.
#ifndef EPP_EXTPROC_SERVER_H_
#define EPP_EXTPROC_SERVER_H_

#include <atomic>
#include <functional>
#include <memory>

#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "extproc/stream_handler.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace epp::extproc {

// Thread-safe; one instance serves all streams. The director must outlive it.
class ExternalProcessorService final : public pb::ExternalProcessor::CallbackService {
 public:
  ExternalProcessorService(const requestcontrol::Director& director, StreamOptions options);
  grpc::ServerBidiReactor<pb::ProcessingRequest, pb::ProcessingResponse>* Process(
      grpc::CallbackServerContext* context) override;

  // Streams currently open (for tests and shutdown).
  int64_t active_streams() const { return active_.load(); }

 private:
  const requestcontrol::Director& director_;
  const StreamOptions options_;
  std::atomic<int64_t> active_{0};
};

// grpc.health.v1.Health with the reference EPP's answers:
//   leader election off: every service name is SERVING iff live();
//   leader election on: "liveness" always SERVING; "readiness", "" and the ext_proc service
//   name SERVING iff live() and leader(); other names SERVICE_UNKNOWN.
// Watch is not implemented (as in the reference). Thread-safe.
class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  HealthService(std::function<bool()> live, std::function<bool()> leader, bool leader_election);
  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusFor(const std::string& service) const;

 private:
  const std::function<bool()> live_;
  const std::function<bool()> leader_;
  const bool leader_election_;
};

}  // namespace epp::extproc

#endif  // EPP_EXTPROC_SERVER_H_
