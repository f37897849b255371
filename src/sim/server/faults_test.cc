#include "sim/server/faults.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace epp::sim {
namespace {

using ::testing::HasSubstr;

TEST(FaultsTest, AppliesOnlyTheFieldsGiven) {
  Faults f;
  f.error_status = 500;
  auto r = ApplyFaultsJson(f, R"({"error_rate":0.25,"metrics_garbage":true,"hang_rate":1})");
  ASSERT_TRUE(std::holds_alternative<Faults>(r));
  const Faults& g = std::get<Faults>(r);
  EXPECT_DOUBLE_EQ(g.error_rate, 0.25);
  EXPECT_DOUBLE_EQ(g.hang_rate, 1.0);
  EXPECT_TRUE(g.metrics_garbage);
  EXPECT_EQ(g.error_status, 500);
  EXPECT_EQ(FaultsJson(g),
            "{\"error_rate\":0.25,\"error_status\":500,\"hang_rate\":1,\"drop_rate\":0,"
            "\"metrics_delay_ms\":0,\"metrics_garbage\":true}");
}

TEST(FaultsTest, RejectsBadFieldsByName) {
  struct Case {
    std::string_view body, message;
  };
  for (const Case& c : {Case{R"({"error_rate":2})", "error_rate: must be in [0, 1]"},
                        Case{R"({"drop_rate":"x"})", "drop_rate: expected a number"},
                        Case{R"({"error_status":200})", "error_status: must be an integer"},
                        Case{R"({"metrics_delay_ms":-1})", "metrics_delay_ms"},
                        Case{R"({"metrics_garbage":1})", "metrics_garbage: expected a boolean"},
                        Case{R"({"bogus":1})", "bogus: unknown fault"},
                        Case{R"([1])", "must be a JSON object"}, Case{"{", "invalid JSON"}}) {
    auto r = ApplyFaultsJson(Faults{}, c.body);
    ASSERT_TRUE(std::holds_alternative<api::Error>(r)) << c.body;
    EXPECT_EQ(std::get<api::Error>(r).status, 400);
    EXPECT_THAT(std::get<api::Error>(r).message, HasSubstr(std::string(c.message))) << c.body;
  }
}

TEST(FaultsTest, ErrorTypesFollowVllm) {
  EXPECT_EQ(ErrorTypeForStatus(400), "BadRequestError");
  EXPECT_EQ(ErrorTypeForStatus(404), "NotFoundError");
  EXPECT_EQ(ErrorTypeForStatus(500), "InternalServerError");
  EXPECT_EQ(ErrorTypeForStatus(503), "ServiceUnavailableError");
}

}  // namespace
}  // namespace epp::sim
