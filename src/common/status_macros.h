// Status propagation helpers. Errors travel as absl::Status (style rule 3); these macros keep
// the early-return boilerplate out of the logic.
#ifndef EPP_COMMON_STATUS_MACROS_H_
#define EPP_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define EPP_CONCAT_INNER_(a, b) a##b
#define EPP_CONCAT_(a, b) EPP_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status epp_status_ = (expr);       \
    if (!epp_status_.ok()) return epp_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, F())` binds the value of an OK StatusOr, or returns its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  EPP_ASSIGN_OR_RETURN_IMPL_(EPP_CONCAT_(epp_statusor_, __LINE__), lhs, expr)
#define EPP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

#endif  // EPP_COMMON_STATUS_MACROS_H_
