#include "datalayer/prometheus_text.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace epp::datalayer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;

// A copy of one reported Sample (the parser reuses its Sample between lines).
struct Got {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;
};

absl::StatusOr<std::vector<Got>> Parse(std::string_view text,
                                       std::vector<std::string_view> wanted) {
  std::vector<Got> got;
  absl::Status s = ParseExposition(text, wanted, [&got](const Sample& sample) {
    Got g;
    g.name = std::string(sample.name);
    for (const auto& [k, v] : sample.labels) g.labels.emplace_back(std::string(k), v);
    g.value = sample.value;
    g.timestamp_ms = sample.timestamp_ms;
    got.push_back(std::move(g));
  });
  if (!s.ok()) return s;
  return got;
}

std::string Msg(const absl::Status& s) {
  return std::string(s.message().data(), s.message().size());
}

TEST(ParseExpositionTest, ReportsOnlyWantedNamesExactly) {
  const std::string page =
      "x_total 1\n"
      "x_bucket{le=\"1\"} 2\n"
      "xx 3\n"
      "x 4\n"
      "y 5\n"
      "prefix_x 6\n"
      "x_created 7\n"
      "x 8\n";
  auto got = Parse(page, {"x"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(2));
  EXPECT_EQ((*got)[0].name, "x");
  EXPECT_EQ((*got)[0].value, 4);
  EXPECT_EQ((*got)[1].name, "x");
  EXPECT_EQ((*got)[1].value, 8);

  // Wanting the longer name does not report its prefix.
  got = Parse(page, {"x_total"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_EQ((*got)[0].name, "x_total");
  EXPECT_EQ((*got)[0].value, 1);
}

TEST(ParseExpositionTest, SeveralWantedNamesInPageOrder) {
  const std::string page =
      "b 1\n"
      "c 2\n"
      "a 3\n"
      "b 4\n";
  auto got = Parse(page, {"a", "b"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(3));
  EXPECT_EQ((*got)[0].name, "b");
  EXPECT_EQ((*got)[0].value, 1);
  EXPECT_EQ((*got)[1].name, "a");
  EXPECT_EQ((*got)[1].value, 3);
  EXPECT_EQ((*got)[2].name, "b");
  EXPECT_EQ((*got)[2].value, 4);
}

TEST(ParseExpositionTest, NothingWantedReportsNothing) {
  auto got = Parse("a 1\nb 2\n", {});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, IsEmpty());
}

TEST(ParseExpositionTest, CommentsAreSkipped) {
  const std::string page =
      "# HELP x The x gauge. x 99\n"
      "# TYPE x gauge\n"
      "# x 98\n"
      "#x 97\n"
      "   # HELP x indented comment\n"
      "\t# TYPE x gauge\n"
      "# EOF\n"
      "x 1\n";
  auto got = Parse(page, {"x"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_EQ((*got)[0].value, 1);
}

TEST(ParseExpositionTest, LabelsInAnyOrderAndUnescaped) {
  struct Case {
    std::string line;
    std::vector<std::pair<std::string, std::string>> want;
  } cases[] = {
      {R"(x{a="1",b="2"} 1)", {{"a", "1"}, {"b", "2"}}},
      {R"(x{b="2",a="1"} 1)", {{"b", "2"}, {"a", "1"}}},
      {R"(x{a="back\\slash"} 1)", {{"a", "back\\slash"}}},
      {R"(x{a="say \"hi\""} 1)", {{"a", "say \"hi\""}}},
      {R"(x{a="two\nlines"} 1)", {{"a", "two\nlines"}}},
      {R"(x{a="\\n"} 1)", {{"a", "\\n"}}},
      {R"(x{a="\\\"\n"} 1)", {{"a", "\\\"\n"}}},
      {R"(x{a=""} 1)", {{"a", ""}}},
      {R"(x{a="{,}= #"} 1)", {{"a", "{,}= #"}}},
      {R"(x{} 1)", {}},
      {R"(x{a="1",} 1)", {{"a", "1"}}},
      {R"(x{a="1",b="2",} 1)", {{"a", "1"}, {"b", "2"}}},
      {R"(x{le="+Inf",model_name="m/x-7B"} 1)", {{"le", "+Inf"}, {"model_name", "m/x-7B"}}},
      {R"(x 1)", {}},
  };
  for (const auto& c : cases) {
    auto got = Parse(c.line, {"x"});
    ASSERT_TRUE(got.ok()) << c.line << ": " << got.status();
    ASSERT_THAT(*got, SizeIs(1)) << c.line;
    EXPECT_EQ((*got)[0].labels, c.want) << c.line;
    EXPECT_EQ((*got)[0].value, 1) << c.line;
  }
}

TEST(ParseExpositionTest, SampleLabelLookup) {
  const std::string page = R"(x{model_name="m",engine="0"} 2.0)";
  int calls = 0;
  std::vector<std::string_view> wanted = {"x"};
  absl::Status s = ParseExposition(page, wanted, [&calls](const Sample& sample) {
    ++calls;
    ASSERT_NE(sample.Label("engine"), nullptr);
    EXPECT_EQ(*sample.Label("engine"), "0");
    ASSERT_NE(sample.Label("model_name"), nullptr);
    EXPECT_EQ(*sample.Label("model_name"), "m");
    EXPECT_EQ(sample.Label("model"), nullptr);
    EXPECT_EQ(sample.Label("model_name_x"), nullptr);
    EXPECT_EQ(sample.Label(""), nullptr);
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(calls, 1);
}

TEST(ParseExpositionTest, Values) {
  struct Case {
    std::string value;
    double want;
  } cases[] = {
      {"3.0", 3.0},
      {"0.0", 0.0},
      {"0.0412", 0.0412},
      {"1.755178079975038e+09", 1.755178079975038e+09},
      {"1.7551780121e+09", 1.7551780121e+09},
      {"3", 3.0},
      {"0", 0.0},
      {"8192", 8192.0},
      {"-7", -7.0},
      {"-0.5", -0.5},
      {"1e-3", 0.001},
      {"204800.0", 204800.0},
      {"+Inf", std::numeric_limits<double>::infinity()},
      {"-Inf", -std::numeric_limits<double>::infinity()},
  };
  for (const auto& c : cases) {
    std::string line = "x{a=\"b\"} " + c.value + "\n";
    auto got = Parse(line, {"x"});
    ASSERT_TRUE(got.ok()) << line << ": " << got.status();
    ASSERT_THAT(*got, SizeIs(1)) << line;
    EXPECT_EQ((*got)[0].value, c.want) << line;
    EXPECT_FALSE((*got)[0].timestamp_ms.has_value()) << line;
  }
}

TEST(ParseExpositionTest, NaNValue) {
  auto got = Parse("x NaN\n", {"x"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_TRUE(std::isnan((*got)[0].value));
}

TEST(ParseExpositionTest, Timestamps) {
  struct Case {
    std::string line;
    double value;
    std::optional<int64_t> ts;
  } cases[] = {
      {"x 1", 1, std::nullopt},
      {"x 1 1755178079975", 1, 1755178079975},
      {"x{a=\"b\"} 2.5 1755178079975", 2.5, 1755178079975},
      {"x 1 0", 1, 0},
      {"x 1 -5", 1, -5},
      {"x\t3\t42", 3, 42},
      {"x 1   42   ", 1, 42},
      {"x 1   ", 1, std::nullopt},
  };
  for (const auto& c : cases) {
    auto got = Parse(c.line, {"x"});
    ASSERT_TRUE(got.ok()) << c.line << ": " << got.status();
    ASSERT_THAT(*got, SizeIs(1)) << c.line;
    EXPECT_EQ((*got)[0].value, c.value) << c.line;
    EXPECT_EQ((*got)[0].timestamp_ms, c.ts) << c.line;
  }
}

TEST(ParseExpositionTest, ExemplarsAreIgnored) {
  struct Case {
    std::string line;
    double value;
    std::optional<int64_t> ts;
  } cases[] = {
      {R"(x_bucket{le="0.5"} 3.0 # {trace_id="a"} 1.0)", 3.0, std::nullopt},
      {R"(x_bucket{le="0.5"} 3.0 # {trace_id="a"} 1.0 1755178079.975)", 3.0, std::nullopt},
      {R"(x_bucket{le="0.5"} 3.0 1000 # {trace_id="a"} 1.0)", 3.0, 1000},
      {R"(x_bucket 7 # {} 0.2)", 7.0, std::nullopt},
  };
  for (const auto& c : cases) {
    auto got = Parse(c.line, {"x_bucket"});
    ASSERT_TRUE(got.ok()) << c.line << ": " << got.status();
    ASSERT_THAT(*got, SizeIs(1)) << c.line;
    EXPECT_EQ((*got)[0].value, c.value) << c.line;
    EXPECT_EQ((*got)[0].timestamp_ms, c.ts) << c.line;
    EXPECT_THAT((*got)[0].labels, ::testing::Not(::testing::Contains(Pair("trace_id", "a"))))
        << c.line;
  }
}

TEST(ParseExpositionTest, LineEndingsAndWhitespace) {
  struct Case {
    const char* name;
    std::string page;
  } cases[] = {
      {"lf", "x{a=\"1\"} 1\nx{a=\"2\"} 2\n"},
      {"crlf", "x{a=\"1\"} 1\r\nx{a=\"2\"} 2\r\n"},
      {"no final newline", "x{a=\"1\"} 1\nx{a=\"2\"} 2"},
      {"crlf, no final newline", "x{a=\"1\"} 1\r\nx{a=\"2\"} 2\r"},
      {"blank lines", "\n\n  \n\t\nx{a=\"1\"} 1\n\r\n\nx{a=\"2\"} 2\n\n"},
      {"leading whitespace", "   x{a=\"1\"} 1\n\t x{a=\"2\"} 2\n"},
      {"timestamps, crlf", "x{a=\"1\"} 1 100\r\nx{a=\"2\"} 2 200\r\n"},
  };
  for (const auto& c : cases) {
    auto got = Parse(c.page, {"x"});
    ASSERT_TRUE(got.ok()) << c.name << ": " << got.status();
    ASSERT_THAT(*got, SizeIs(2)) << c.name;
    EXPECT_THAT((*got)[0].labels, ElementsAre(Pair("a", "1"))) << c.name;
    EXPECT_EQ((*got)[0].value, 1) << c.name;
    EXPECT_THAT((*got)[1].labels, ElementsAre(Pair("a", "2"))) << c.name;
    EXPECT_EQ((*got)[1].value, 2) << c.name;
  }
}

TEST(ParseExpositionTest, CrlfWithTimestampAndLabelValue) {
  // The '\r' must not end up in the timestamp or in the value.
  auto got = Parse("x 5 1234\r\ny{a=\"v\"} 6\r\n", {"x", "y"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(2));
  EXPECT_EQ((*got)[0].value, 5);
  EXPECT_EQ((*got)[0].timestamp_ms, 1234);
  EXPECT_THAT((*got)[1].labels, ElementsAre(Pair("a", "v")));
  EXPECT_EQ((*got)[1].value, 6);
}

TEST(ParseExpositionTest, EmptyPage) {
  for (std::string page : {"", "\n", "\r\n", "# only a comment", "   "}) {
    auto got = Parse(page, {"x"});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_THAT(*got, IsEmpty());
  }
}

TEST(ParseExpositionTest, MalformedWantedLineNamesLineAndMetric) {
  // The bad line is always line 6: a HELP, a TYPE, a blank line, a malformed line of an
  // unwanted family (which is not an error) and a good wanted line come first.
  const std::string prefix =
      "# HELP my:metric Something.\n"
      "# TYPE my:metric gauge\n"
      "\n"
      "other{a=\"unterminated} 1\n"
      "my:metric{a=\"ok\"} 1\n";
  struct Case {
    const char* what;
    std::string line;
  } cases[] = {
      {"unterminated label value", R"(my:metric{a="b} 1)"},
      {"unterminated label value at end", R"(my:metric{a="b)"},
      {"escape at end of line", R"(my:metric{a="b\)"},
      {"bad escape", R"(my:metric{a="b\x"} 1)"},
      {"bad escape \\t", R"(my:metric{a="\t"} 1)"},
      {"missing value", R"(my:metric{a="b"})"},
      {"missing value, no labels", "my:metric"},
      {"missing value, trailing blank", R"(my:metric{a="b"} )"},
      {"bad value", R"(my:metric{a="b"} abc)"},
      {"bad value 1.0abc", "my:metric 1.0abc"},
      {"bad value ++1", "my:metric ++1"},
      {"bad timestamp", R"(my:metric{a="b"} 1 abc)"},
      {"fractional timestamp", "my:metric 1 12.5"},
      {"garbage after timestamp", R"(my:metric{a="b"} 1 1000 abc)"},
      {"missing '=' in labels", R"(my:metric{a"b"} 1)"},
      {"label value without quotes", "my:metric{a=b} 1"},
      {"unterminated label set", R"(my:metric{a="b")"},
      {"missing comma between labels", R"(my:metric{a="b" c="d"} 1)"},
      {"bad label name", R"(my:metric{1a="b"} 1)"},
      {"no space before value", R"(my:metric{a="b"}1)"},
  };
  for (const auto& c : cases) {
    for (const char* eol : {"\n", "\r\n", ""}) {
      std::string page = prefix + c.line + eol + "my:metric{a=\"after\"} 2\n";
      if (*eol == '\0') page = prefix + c.line;
      std::vector<std::string> seen;
      std::vector<std::string_view> wanted = {"my:metric"};
      absl::Status s = ParseExposition(page, wanted, [&seen](const Sample& sample) {
        seen.emplace_back(sample.Label("a") ? *sample.Label("a") : "?");
      });
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.what << ": " << s;
      EXPECT_THAT(Msg(s), HasSubstr("line 6:")) << c.what;
      EXPECT_THAT(Msg(s), HasSubstr("my:metric")) << c.what;
      // Only the good line before it was reported; the malformed line never is.
      EXPECT_THAT(seen, ElementsAre("ok")) << c.what;
    }
  }
}

TEST(ParseExpositionTest, LineNumberCountsEveryLine) {
  struct Case {
    std::string page;
    int line;
  } cases[] = {
      {"x abc\n", 1},
      {"x 1\nx abc\n", 2},
      {"\n\n\nx abc", 4},
      {"# a\r\n# b\r\n\r\nx 1\r\nx abc\r\n", 5},
      {"y{\n# c\ny abc\nx 1\nx 2\nx 3\nx 4\nx 5\nx 6\nx 7\nx 8 abc\n", 11},
  };
  for (const auto& c : cases) {
    auto got = Parse(c.page, {"x"});
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << c.page;
    EXPECT_THAT(Msg(got.status()), HasSubstr("line " + std::to_string(c.line) + ":")) << c.page;
  }
}

TEST(ParseExpositionTest, MalformedUnwantedLinesAreNotErrors) {
  const std::string page =
      "other{a=\"unterminated} 1\n"
      "other{a=\"b\\x\"} 1\n"
      "other{a=\"b\"}\n"
      "other abc\n"
      "other 1 abc\n"
      "other 1 1 1 1\n"
      "other{a\"b\"} 1\n"
      "x_total abc\n"
      "{a=\"b\"} 1\n"
      "1abc 2\n"
      "}}}{{{\n"
      "x 1\n";
  auto got = Parse(page, {"x"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_EQ((*got)[0].value, 1);
}

TEST(ParseExpositionTest, BinaryGarbageNeverCrashes) {
  std::mt19937 rng(12345);
  const std::vector<std::string> fragments = {
      "x",  "x{", "x ", "{", "}", "\"",  "\\",  "=",    ",",    " ",
      "\t", "\n", "\r", "#", "1", "1.5", "NaN", "+Inf", "a=\"", std::string(1, '\0'),
      "e+", "-"};
  std::vector<std::string_view> wanted = {"x", "y"};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string page;
    int n = static_cast<int>(rng() % 200);
    for (int i = 0; i < n; ++i) {
      if (rng() % 2 == 0) {
        page.push_back(static_cast<char>(rng() % 256));
      } else {
        page += fragments[rng() % fragments.size()];
      }
    }
    int calls = 0;
    absl::Status s = ParseExposition(page, wanted, [&calls](const Sample& sample) {
      ++calls;
      EXPECT_TRUE(sample.name == "x" || sample.name == "y");
    });
    EXPECT_TRUE(s.ok() || s.code() == absl::StatusCode::kInvalidArgument) << s;
    if (!s.ok()) {
      EXPECT_THAT(Msg(s), HasSubstr("line ")) << s;
    }
  }
}

TEST(ParseExpositionTest, NulBytesDoNotTruncate) {
  // A NUL in an unwanted line does not hide the wanted line after it.
  const char kPage[] = "junk\0\0\0 1\nx 7\n";
  std::string page(kPage, sizeof(kPage) - 1);
  ASSERT_EQ(page.size(), 14u);
  auto got = Parse(page, {"x"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_EQ((*got)[0].value, 7);
}

TEST(ParseExpositionTest, HugeLabelValue) {
  const std::string big(1 << 20, 'v');
  auto got = Parse("x{a=\"" + big + "\",b=\"c\"} 1\n", {"x"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  ASSERT_THAT((*got)[0].labels, SizeIs(2));
  EXPECT_EQ((*got)[0].labels[0].first, "a");
  EXPECT_EQ((*got)[0].labels[0].second.size(), big.size());
  EXPECT_EQ((*got)[0].labels[0].second, big);
  EXPECT_THAT((*got)[0].labels[1], Pair("b", "c"));

  // Escaped, 1 MiB of `\"` unescapes to half as many bytes.
  std::string escaped;
  for (int i = 0; i < (1 << 19); ++i) escaped += "\\\"";
  got = Parse("x{a=\"" + escaped + "\"} 2\n", {"x"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_EQ((*got)[0].labels[0].second, std::string(1 << 19, '"'));

  // Unterminated: an error, not a crash or a hang.
  got = Parse("y 1\nx{a=\"" + big, {"x"});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(got.status()), HasSubstr("line 2:"));

  // Unwanted: skipped.
  got = Parse("z{a=\"" + big + "\"} 1\nx 3\n", {"x"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  EXPECT_EQ((*got)[0].value, 3);
}

TEST(ParseExpositionTest, VllmStylePage) {
  const std::string page =
      "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
      "# TYPE vllm:num_requests_running gauge\n"
      "vllm:num_requests_running{engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"} "
      "8.0\n"
      "# TYPE vllm:num_requests_waiting_by_reason gauge\n"
      "vllm:num_requests_waiting_by_reason{engine=\"0\",model_name=\"m\",reason=\"capacity\"} "
      "2.0\n"
      "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.\n"
      "# TYPE vllm:time_to_first_token_seconds histogram\n"
      "vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"+Inf\",model_name=\"m\"} 140.0\n"
      "vllm:time_to_first_token_seconds_count{engine=\"0\",model_name=\"m\"} 140.0\n"
      "# TYPE vllm:lora_requests_info gauge\n"
      "vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"\","
      "waiting_lora_adapters=\"\"} 1.755178079975038e+09\n";
  auto got = Parse(page, {"vllm:num_requests_running", "vllm:time_to_first_token_seconds_bucket",
                          "vllm:lora_requests_info"});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(3));
  EXPECT_EQ((*got)[0].name, "vllm:num_requests_running");
  EXPECT_THAT(
      (*got)[0].labels,
      ElementsAre(Pair("engine", "0"), Pair("model_name", "meta-llama/Llama-3.1-8B-Instruct")));
  EXPECT_EQ((*got)[0].value, 8.0);
  EXPECT_EQ((*got)[1].name, "vllm:time_to_first_token_seconds_bucket");
  EXPECT_THAT((*got)[1].labels,
              ElementsAre(Pair("engine", "0"), Pair("le", "+Inf"), Pair("model_name", "m")));
  EXPECT_EQ((*got)[1].value, 140.0);
  EXPECT_EQ((*got)[2].name, "vllm:lora_requests_info");
  EXPECT_THAT((*got)[2].labels,
              ElementsAre(Pair("max_lora", "2"), Pair("running_lora_adapters", ""),
                          Pair("waiting_lora_adapters", "")));
  EXPECT_EQ((*got)[2].value, 1.755178079975038e+09);
}

TEST(ParsePromFloatTest, Table) {
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    const char* in;
    std::optional<double> want;
  } cases[] = {
      {"0", 0.0},
      {"3", 3.0},
      {"3.0", 3.0},
      {"-3.0", -3.0},
      {"+3.0", 3.0},
      {"0.0412", 0.0412},
      {".5", 0.5},
      {"1e3", 1000.0},
      {"1E3", 1000.0},
      {"1.755178079975038e+09", 1.755178079975038e+09},
      {"2.5e-3", 0.0025},
      {"-1e-3", -0.001},
      {"123456789012", 123456789012.0},
      {"+Inf", inf},
      {"-Inf", -inf},
      {"Inf", inf},
      {"inf", inf},
      {"+inf", inf},
      {"INF", inf},
      {"-INF", -inf},
      {"Infinity", inf},
      {"-infinity", -inf},
      {"", std::nullopt},
      {"+", std::nullopt},
      {"-", std::nullopt},
      {"abc", std::nullopt},
      {"1.0abc", std::nullopt},
      {"1e", std::nullopt},
      {"1.2.3", std::nullopt},
      {"++1", std::nullopt},
      {"+-1", std::nullopt},
      {"--1", std::nullopt},
      {" 1", std::nullopt},
      {"1 ", std::nullopt},
      {"Infx", std::nullopt},
      {"In", std::nullopt},
      {"NaNa", std::nullopt},
      {"0x10", std::nullopt},
  };
  for (const auto& c : cases) {
    std::optional<double> got = ParsePromFloat(c.in);
    EXPECT_EQ(got, c.want) << "\"" << c.in << "\"";
  }
}

TEST(ParsePromFloatTest, NaN) {
  for (const char* in : {"NaN", "nan", "NAN", "+NaN", "-NaN"}) {
    std::optional<double> got = ParsePromFloat(in);
    ASSERT_TRUE(got.has_value()) << in;
    EXPECT_TRUE(std::isnan(*got)) << in;
  }
}

}  // namespace
}  // namespace epp::datalayer
