// Runs a load: resolves the target, draws the workload (loadgen/workload.h) and sends it with a
// StreamingClient from one Asio event loop on the calling thread, as an open loop (each request
// sent when its arrival time comes, whatever is in flight) or a closed loop (`concurrency`
// requests in flight, the next sent when one finishes), until the request limit or the duration
// is reached and every request has finished (or timed out).
//
// Reproducibility: the same configuration and seed give the same request sequence and, in an
// open loop, the same arrival times (see workload.h; the closed loop draws its requests from a
// generator seeded with the seed alone).
#ifndef EPP_LOADGEN_RUNNER_H_
#define EPP_LOADGEN_RUNNER_H_

#include <vector>

#include "absl/status/statusor.h"
#include "loadgen/config.h"
#include "loadgen/report.h"

namespace epp::loadgen {

struct RunOptions {
  // SIGINT / SIGTERM stop the run: nothing more is sent, requests in flight are cancelled
  // (counted as kCancelled) and the run returns what it has.
  bool stop_on_signals = false;
  // A progress line on stderr every this many seconds; 0: none.
  double progress_every_s = 0;
};

struct RunResult {
  std::vector<RequestRecord> records;  // by index
  Summary summary;
};

// Runs `config` to the end; blocks. A target name with several addresses is probed once (a
// connection opened and closed) to pick the first that accepts. Errors: InvalidArgument
// for a configuration that does not validate, Unavailable when the target's host does not
// resolve. Failed requests are results, not errors.
absl::StatusOr<RunResult> RunLoad(const LoadgenConfig& config, const RunOptions& options = {});

}  // namespace epp::loadgen

#endif  // EPP_LOADGEN_RUNNER_H_
