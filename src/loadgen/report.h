// Results of a run: the per-request records, their summary, the JSON result file and the
// one-screen text summary.
//
// Summary rules: latency distributions (TTFT, ITL, E2E, TPOT) and token counts come from the
// requests that succeeded; TPOT is (E2E − TTFT) / (output tokens − 1) for requests with more
// than one output token; throughputs divide by the run's duration (from its start to the last
// answer). Failed requests are counted by HTTP status (0: no complete answer) and by kind.
#ifndef EPP_LOADGEN_REPORT_H_
#define EPP_LOADGEN_REPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loadgen/config.h"
#include "loadgen/meter.h"
#include "loadgen/stats.h"

namespace epp::loadgen {

struct RequestRecord {
  int64_t index = 0;       // position in the request sequence
  double scheduled_s = 0;  // when it was due, since the start of the run
  std::string model;
  int64_t prompt_bytes = 0;
  int max_tokens = 0;
  int group = -1;  // shared-prefix group
  RequestResult result;
};

struct Summary {
  int64_t requests = 0;
  int64_t succeeded = 0;
  int64_t failed = 0;
  std::map<int, int64_t> errors_by_status;
  std::map<std::string, int64_t> errors_by_kind;
  double duration_s = 0;
  double requests_per_s = 0;  // succeeded / duration
  int64_t output_tokens = 0;
  double output_tokens_per_s = 0;
  int64_t prompt_tokens = 0;  // as the servers' usage reported them
  Distribution ttft_s;
  Distribution itl_s;
  Distribution e2e_s;
  Distribution tpot_s;
  int64_t connections_opened = 0;
  bool interrupted = false;  // stopped by a signal
};

Summary Summarize(const std::vector<RequestRecord>& records, double duration_s);

// {"config":{...},"summary":{...}[,"records":[...]]}; times in milliseconds ("_ms") except
// the run's duration and the records' scheduled times (seconds). `records` may be null.
std::string ResultJson(const LoadgenConfig& config, const Summary& summary,
                       const std::vector<RequestRecord>* records);

// About a dozen lines of at most 100 columns for a terminal.
std::string TextSummary(const LoadgenConfig& config, const Summary& summary);

}  // namespace epp::loadgen

#endif  // EPP_LOADGEN_REPORT_H_
