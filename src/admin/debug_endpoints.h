// GET /debug/endpoints: what epp sees of every endpoint, as JSON — identity, labels, and the
// last scraped metrics with their age and the last scrape error. Operators use it to check the
// picker's view; tests assert on it.
#ifndef EPP_ADMIN_DEBUG_ENDPOINTS_H_
#define EPP_ADMIN_DEBUG_ENDPOINTS_H_

#include <chrono>
#include <functional>
#include <string>

#include "datastore/endpoint.h"

namespace epp::admin {

// `last_error(key)` gives the endpoint's last metrics error ("" when fine). The array is in
// snapshot order; `age_ms` is null for an endpoint never scraped successfully.
std::string DebugEndpointsJson(const datastore::Snapshot& snapshot,
                               const std::function<std::string(const std::string&)>& last_error,
                               std::chrono::system_clock::time_point now);

}  // namespace epp::admin

#endif  // EPP_ADMIN_DEBUG_ENDPOINTS_H_
