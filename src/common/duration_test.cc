#include "common/duration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace epp {
namespace {

using ::testing::HasSubstr;

TEST(ParseGoDurationTest, Table) {
  struct Case {
    std::string in;
    std::optional<int64_t> ns;
  } cases[] = {
      {"200ms", 200'000'000},
      {"1s", 1'000'000'000},
      {"1.5s", 1'500'000'000},
      {"0.5ms", 500'000},
      {"1m30s", 90'000'000'000},
      {"1h", 3'600'000'000'000},
      {"5m", 300'000'000'000},
      {"250us", 250'000},
      {"250\xC2\xB5s", 250'000},  // micro sign
      {"250\xCE\xBCs", 250'000},  // Greek mu
      {"10ns", 10},
      {"0", 0},
      {"0s", 0},
      {"", std::nullopt},
      {"50", std::nullopt},
      {"ms", std::nullopt},
      {"5 ms", std::nullopt},
      {"-1s", std::nullopt},
      {"+1s", std::nullopt},
      {"1d", std::nullopt},
      {"1.2.3s", std::nullopt},
      {"1s ", std::nullopt},
      {"2000000h", 7'200'000'000'000'000'000},
      {"3000000h", std::nullopt},  // beyond int64 nanoseconds (about 2562047 h)
  };
  for (const auto& c : cases) {
    auto got = ParseGoDuration(c.in);
    if (c.ns) {
      ASSERT_TRUE(got.has_value()) << c.in;
      EXPECT_EQ(got->count(), *c.ns) << c.in;
    } else {
      EXPECT_FALSE(got.has_value()) << c.in;
    }
  }
}

TEST(ParsePositiveDurationParamTest, RejectsZeroAndGarbageNamingTheKey) {
  auto ok = ParsePositiveDurationParam("ttl", "300s");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, std::chrono::seconds(300));
  for (const char* bad : {"0s", "0", "300", "soon"}) {
    auto got = ParsePositiveDurationParam("ttl", bad);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("\"ttl\"")) << bad;
  }
}

}  // namespace
}  // namespace epp
