#include "loadgen/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/strings.h"
#include "simdjson.h"

namespace epp::loadgen {
namespace {

using ::testing::HasSubstr;

RequestRecord Ok(int64_t index, double ttft, double e2e, int64_t tokens) {
  RequestRecord r;
  r.index = index;
  r.model = "m";
  r.result.status = 200;
  r.result.ttft_s = ttft;
  r.result.e2e_s = e2e;
  r.result.output_tokens = tokens;
  r.result.prompt_tokens = 10;
  for (int64_t i = 1; i < tokens; ++i) r.result.itl_s.push_back((e2e - ttft) / (tokens - 1));
  return r;
}

RequestRecord Failed(int64_t index, int status, ErrorKind kind) {
  RequestRecord r;
  r.index = index;
  r.result.status = status;
  r.result.error_kind = kind;
  r.result.error = "bad \"thing\"";
  r.result.e2e_s = 5;  // must not count in the latencies
  r.result.ttft_s = 4;
  r.result.output_tokens = 1000;
  return r;
}

std::vector<RequestRecord> Sample() {
  return {Ok(0, 0.1, 1.1, 11), Ok(1, 0.3, 2.3, 21), Failed(2, 503, ErrorKind::kHttpStatus),
          Failed(3, 503, ErrorKind::kHttpStatus), Failed(4, 0, ErrorKind::kTimeout)};
}

TEST(SummarizeRunTest, CountsErrorsAndSummarizesOnlySuccesses) {
  Summary s = Summarize(Sample(), 4.0);
  EXPECT_EQ(s.requests, 5);
  EXPECT_EQ(s.succeeded, 2);
  EXPECT_EQ(s.failed, 3);
  EXPECT_EQ(s.errors_by_status, (std::map<int, int64_t>{{0, 1}, {503, 2}}));
  EXPECT_EQ(s.errors_by_kind, (std::map<std::string, int64_t>{{"http_status", 2}, {"timeout", 1}}));
  EXPECT_EQ(s.output_tokens, 32);
  EXPECT_EQ(s.prompt_tokens, 20);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 8);
  EXPECT_DOUBLE_EQ(s.requests_per_s, 0.5);
  EXPECT_EQ(s.ttft_s.count, 2);
  EXPECT_DOUBLE_EQ(s.ttft_s.mean, 0.2);
  EXPECT_DOUBLE_EQ(s.e2e_s.max, 2.3);
  EXPECT_EQ(s.itl_s.count, 30);
  EXPECT_DOUBLE_EQ(s.itl_s.mean, 0.1);
  EXPECT_EQ(s.tpot_s.count, 2);
  EXPECT_DOUBLE_EQ(s.tpot_s.p50, 0.1);
}

LoadgenConfig Config() {
  LoadgenConfig c;
  c.rate = 20;
  c.num_requests = 5;
  return c;
}

TEST(ResultJsonTest, IsJsonWithTheSummaryAndOptionalRecords) {
  std::vector<RequestRecord> records = Sample();
  Summary s = Summarize(records, 4.0);
  simdjson::dom::parser parser;
  for (bool with_records : {false, true}) {
    std::string json = ResultJson(Config(), s, with_records ? &records : nullptr);
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
    EXPECT_EQ(std::string_view(doc["config"]["workload"]), "shared-prefix");
    auto summary = doc["summary"];
    EXPECT_EQ(int64_t(summary["requests"]), 5);
    EXPECT_EQ(int64_t(summary["errors_by_status"]["503"]), 2);
    EXPECT_EQ(int64_t(summary["errors_by_status"]["0"]), 1);
    EXPECT_EQ(int64_t(summary["errors_by_kind"]["timeout"]), 1);
    EXPECT_DOUBLE_EQ(double(summary["ttft_ms"]["mean"]), 200);
    EXPECT_DOUBLE_EQ(double(summary["e2e_ms"]["p50"]), 1700);
    EXPECT_DOUBLE_EQ(double(summary["output_tokens_per_s"]), 8);
    EXPECT_DOUBLE_EQ(double(summary["duration_s"]), 4);
    simdjson::dom::array recs;
    bool has_records = doc["records"].get(recs) == simdjson::SUCCESS;
    EXPECT_EQ(has_records, with_records);
    if (has_records) {
      ASSERT_EQ(recs.size(), 5u);
      EXPECT_EQ(int64_t(recs.at(0)["output_tokens"]), 11);
      EXPECT_EQ(recs.at(0)["itl_ms"].get_array().size(), 10u);
      EXPECT_EQ(std::string_view(recs.at(2)["error_kind"]), "http_status");
      EXPECT_EQ(std::string_view(recs.at(2)["error"]), "bad \"thing\"");
      EXPECT_EQ(bool(recs.at(2)["ok"]), false);
    }
  }
}

TEST(ResultJsonTest, AnEmptyRunIsStillJson) {
  simdjson::dom::parser parser;
  std::vector<RequestRecord> none;
  std::string json = ResultJson(Config(), Summarize(none, 0), &none);
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
}

TEST(TextSummaryTest, FitsOneScreen) {
  std::string text = TextSummary(Config(), Summarize(Sample(), 4.0));
  std::vector<std::string_view> lines = Split(text, '\n');
  EXPECT_LE(lines.size(), 15u);
  for (std::string_view line : lines) EXPECT_LE(line.size(), 100u) << line;
  EXPECT_THAT(text, HasSubstr("5 requests: 2 ok, 3 failed, in 4.00 s"));
  EXPECT_THAT(text, HasSubstr("errors:  status 0: 1, 503: 2; http_status: 2, timeout: 1\n"));
  EXPECT_THAT(text, HasSubstr("poisson 20 req/s"));
  EXPECT_THAT(text, HasSubstr("TTFT"));
}

}  // namespace
}  // namespace epp::loadgen
