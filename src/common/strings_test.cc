#include "common/strings.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace epp {
namespace {

TEST(StrCatTest, MixedArguments) {
  std::string_view sv = "sv";
  absl::string_view asv = "asv";
  EXPECT_EQ(StrCat("a", sv, asv, std::string("s"), 'c', 42, -7, true, uint16_t{9}),
            "asvasvsc42-7true9");
}

TEST(StrJoinTest, Joins) {
  std::vector<std::string_view> parts = {"a", "b", "c"};
  EXPECT_EQ(StrJoin(parts, ", "), "a, b, c");
  EXPECT_EQ(StrJoin(std::vector<std::string>{}, ","), "");
}

TEST(JsonEscapeTest, ControlCharacters) {
  EXPECT_EQ(JsonEscape(std::string("a\x01\n\\\"", 5)), "a\\u0001\\n\\\\\\\"");
}

TEST(SplitTest, KeepsEmptyPieces) {
  struct Case {
    std::string_view in;
    std::vector<std::string_view> want;
  } cases[] = {
      {"", {""}},
      {"a", {"a"}},
      {"a,b", {"a", "b"}},
      {",a,,b,", {"", "a", "", "b", ""}},
  };
  for (const auto& c : cases) EXPECT_EQ(Split(c.in, ','), c.want) << c.in;
}

}  // namespace
}  // namespace epp
