// Fault injection for reliability tests: settable by flags at start and at run time through
// `GET/POST /sim/faults` (a JSON object with any of the fields below).
#ifndef EPP_SIM_SERVER_FAULTS_H_
#define EPP_SIM_SERVER_FAULTS_H_

#include <string>
#include <string_view>
#include <variant>

#include "sim/server/api.h"

namespace epp::sim {

struct Faults {
  double error_rate = 0;         // fraction of generation requests answered with error_status
  int error_status = 503;        // 4xx or 5xx
  double hang_rate = 0;          // fraction accepted and never answered (until the client leaves)
  double drop_rate = 0;          // fraction whose connection is closed right after the first token
  int metrics_delay_ms = 0;      // /metrics answered after this delay
  bool metrics_garbage = false;  // /metrics answered 200 with bytes that are not Prometheus text
};

// {"error_rate":0.0,...} with every field.
std::string FaultsJson(const Faults& f);

// `current` with the fields present in the JSON object `body` replaced. Errors name the field
// (unknown fields, wrong types, rates outside [0, 1], statuses outside 400..599, negative delay).
std::variant<Faults, api::Error> ApplyFaultsJson(const Faults& current, std::string_view body);

// The error type vLLM reports for an HTTP status.
std::string ErrorTypeForStatus(int status);

}  // namespace epp::sim

#endif  // EPP_SIM_SERVER_FAULTS_H_
