#include "common/logging.h"

namespace epp {

void SetLogVerbosity(int v) {
  spdlog::level::level_enum level = spdlog::level::info;
  if (v <= 0) level = spdlog::level::warn;
  if (v >= 4) level = spdlog::level::debug;
  if (v >= 5) level = spdlog::level::trace;
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
}

}  // namespace epp
