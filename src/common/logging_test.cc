#include "common/logging.h"

#include "gtest/gtest.h"

namespace epp {
namespace {

TEST(LoggingTest, VerbosityMapsToLevels) {
  struct Case {
    int v;
    spdlog::level::level_enum want;
  } cases[] = {{0, spdlog::level::warn},
               {2, spdlog::level::info},
               {3, spdlog::level::info},
               {4, spdlog::level::debug},
               {5, spdlog::level::trace}};
  for (const auto& c : cases) {
    SetLogVerbosity(c.v);
    EXPECT_EQ(spdlog::get_level(), c.want) << "v=" << c.v;
  }
}

}  // namespace
}  // namespace epp
