// Logging: spdlog behind a verbosity knob that follows the reference's `-v` levels
// (2 = default, 3 = verbose, 4 = debug, 5 = trace).
#ifndef EPP_COMMON_LOGGING_H_
#define EPP_COMMON_LOGGING_H_

#ifndef SPDLOG_ACTIVE_LEVEL
#define SPDLOG_ACTIVE_LEVEL SPDLOG_LEVEL_TRACE
#endif
#include "spdlog/spdlog.h"

namespace epp {

// Maps a `-v` verbosity to spdlog's level and installs it on the default logger. Not
// thread-safe with respect to concurrent logging setup; call once at start.
void SetLogVerbosity(int v);

}  // namespace epp

#define EPP_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define EPP_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define EPP_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
#define EPP_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define EPP_LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)

#endif  // EPP_COMMON_LOGGING_H_
