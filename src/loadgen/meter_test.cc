#include "loadgen/meter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace epp::loadgen {
namespace {

using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Text(std::string_view t) {
  return "data: {\"choices\":[{\"index\":0,\"text\":\"" + std::string(t) + "\"}]}\n\n";
}
const char kUsage[] =
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3}}\n\n";

TEST(ResponseMeterTest, TimesTheFirstTokenAndTheGapsBetweenTokens) {
  ResponseMeter m;
  m.OnHeaders(200, "text/event-stream; charset=utf-8");
  m.OnBody(Text(" a").substr(0, 9), 0.05);  // half a chunk: no token yet
  m.OnBody(Text(" a").substr(9), 0.10);
  m.OnBody(Text(" b") + Text(" c"), 0.25);  // two tokens in one read
  m.OnBody(kUsage, 0.26);
  m.OnBody("data: [DONE]\n\n", 0.27);
  m.OnComplete(0.30);
  RequestResult r = m.Take();
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.10);
  EXPECT_THAT(r.itl_s, ElementsAre(DoubleEq(0.15), DoubleEq(0.0)));
  EXPECT_DOUBLE_EQ(r.e2e_s, 0.30);
  EXPECT_EQ(r.output_tokens, 3);
  EXPECT_EQ(r.content_chunks, 3);
  EXPECT_EQ(r.prompt_tokens, 11);
}

TEST(ResponseMeterTest, ContentTypeIsCaseInsensitive) {
  ResponseMeter m;
  m.OnHeaders(200, "Text/Event-Stream");
  m.OnBody(Text("x"), 0.1);
  m.OnComplete(0.2);
  EXPECT_EQ(m.Take().output_tokens, 1);
}

TEST(ResponseMeterTest, AnErrorStatusIsRecordedWithTheServersMessage) {
  ResponseMeter m;
  m.OnHeaders(503, "application/json");
  m.OnBody(R"({"error":{"message":"injected fault: request failed","type":"Service)", 0.01);
  m.OnBody(R"(UnavailableError","param":null,"code":503}})", 0.02);
  m.OnComplete(0.02);
  RequestResult r = m.Take();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.error_kind, ErrorKind::kHttpStatus);
  EXPECT_EQ(r.error, "HTTP 503: injected fault: request failed");
  EXPECT_EQ(r.ttft_s, -1);
}

TEST(ResponseMeterTest, AnErrorBodyThatIsNotJsonIsQuotedPrintably) {
  ResponseMeter m;
  m.OnHeaders(404, "text/plain");
  m.OnBody("no\nsuch \xff route", 0.01);
  m.OnComplete(0.01);
  EXPECT_EQ(m.Take().error, "HTTP 404: no?such ? route");
}

TEST(ResponseMeterTest, AStreamCutShortIsStatusZeroWithWhatItDelivered) {
  ResponseMeter m;
  m.OnHeaders(200, "text/event-stream");
  m.OnBody(Text("a"), 0.1);
  m.OnFailure(ErrorKind::kTransport, "read: end of stream", 0.12);
  RequestResult r = m.Take();
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.error_kind, ErrorKind::kTransport);
  EXPECT_THAT(r.error, HasSubstr("read: end of stream (after HTTP 200 and 1 chunks of text)"));
  EXPECT_EQ(r.output_tokens, 1);
  EXPECT_DOUBLE_EQ(r.e2e_s, 0.12);
}

TEST(ResponseMeterTest, AnErrorStatusWhoseBodyIsCutIsStillThatStatus) {
  ResponseMeter m;
  m.OnHeaders(500, "application/json");
  m.OnFailure(ErrorKind::kTransport, "read: end of stream", 0.1);
  RequestResult r = m.Take();
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.error_kind, ErrorKind::kHttpStatus);
}

TEST(ResponseMeterTest, FailuresBeforeAnyAnswerAreStatusZero) {
  for (ErrorKind kind : {ErrorKind::kConnect, ErrorKind::kTimeout, ErrorKind::kCancelled}) {
    ResponseMeter m;
    m.OnFailure(kind, "connect: refused", 0.001);
    RequestResult r = m.Take();
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.error_kind, kind);
    EXPECT_EQ(r.error, "connect: refused");
  }
}

TEST(ResponseMeterTest, AnErrorEventInA200StreamFailsTheRequest) {
  ResponseMeter m;
  m.OnHeaders(200, "text/event-stream");
  m.OnBody(Text("a") + "data: {\"error\":{\"message\":\"oops\"}}\n\n", 0.1);
  m.OnComplete(0.2);
  RequestResult r = m.Take();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.error_kind, ErrorKind::kStreamError);
  EXPECT_THAT(r.error, HasSubstr("oops"));
}

TEST(ResponseMeterTest, AWholeJsonAnswerCountsItsUsageAtTheEnd) {
  ResponseMeter m;
  m.OnHeaders(200, "application/json");
  m.OnBody(R"({"choices":[{"text":"abc"}],"usage":{"prompt_tokens":2,)", 0.1);
  m.OnBody(R"("completion_tokens":4}})", 0.2);
  m.OnComplete(0.25);
  RequestResult r = m.Take();
  EXPECT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.25);
  EXPECT_EQ(r.output_tokens, 4);
}

TEST(ErrorKindTest, Names) {
  EXPECT_EQ(ErrorKindName(ErrorKind::kHttpStatus), "http_status");
  EXPECT_EQ(ErrorKindName(ErrorKind::kTimeout), "timeout");
  EXPECT_EQ(ErrorKindName(ErrorKind::kCancelled), "cancelled");
}

}  // namespace
}  // namespace epp::loadgen
