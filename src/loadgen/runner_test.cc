// End to end: loadgen's runner against a real modelsim server in this process (127.0.0.1:0,
// the engine 100× faster than real time), open and closed loops, both APIs, every workload,
// and modelsim's fault injection. Assertions are about plausibility and counts, never timing.
#include "loadgen/runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/strings.h"
#include "sim/server/server.h"

namespace epp::loadgen {
namespace {

using ::testing::HasSubstr;

class RunnerTest : public ::testing::Test {
 protected:
  void StartServer(sim::ServerConfig c = {}) {
    c.host = "127.0.0.1";
    c.port = 0;
    c.model = "sim-model";
    c.time_scale = 100;
    c.seed = 3;
    ASSERT_TRUE(sim::ValidateServerConfig(c).ok()) << sim::ValidateServerConfig(c);
    server_ = std::make_unique<sim::ModelServer>(std::move(c));
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  LoadgenConfig Config() {
    LoadgenConfig c;
    c.target = StrCat("http://127.0.0.1:", port_);
    c.model = "sim-model";
    c.shared_prefix.groups = 4;
    c.shared_prefix.prompts_per_group = 3;
    c.shared_prefix.system_tokens = 256;
    c.shared_prefix.question_tokens = 32;
    c.shared_prefix.output_tokens = 20;
    c.seed = 5;
    c.timeout_s = 30;
    return c;
  }

  RunResult Run(const LoadgenConfig& c) {
    auto r = RunLoad(c);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : RunResult{};
  }

  std::unique_ptr<sim::ModelServer> server_;
  uint16_t port_ = 0;
};

TEST_F(RunnerTest, AnOpenLoopMeasuresEveryRequestPlausibly) {
  StartServer();
  LoadgenConfig c = Config();
  c.rate = 200;
  c.num_requests = 40;
  RunResult r = Run(c);
  const Summary& s = r.summary;
  EXPECT_EQ(s.requests, 40);
  EXPECT_EQ(s.succeeded, 40);
  EXPECT_EQ(s.failed, 0);
  EXPECT_EQ(s.output_tokens, 40 * 20);
  EXPECT_EQ(s.prompt_tokens, 40 * (256 + 32));  // modelsim: 4 bytes a token
  EXPECT_EQ(s.ttft_s.count, 40);
  EXPECT_EQ(s.itl_s.count, 40 * 19);
  EXPECT_GT(s.ttft_s.min, 0);
  EXPECT_GT(s.itl_s.mean, 0);
  EXPECT_LT(s.ttft_s.p50, s.e2e_s.p50);
  EXPECT_GT(s.output_tokens_per_s, 0);
  EXPECT_GE(s.connections_opened, 1);
  ASSERT_EQ(r.records.size(), 40u);
  for (size_t i = 0; i < r.records.size(); ++i) {
    const RequestRecord& rec = r.records[i];
    EXPECT_EQ(rec.index, static_cast<int64_t>(i));
    EXPECT_EQ(rec.result.status, 200);
    EXPECT_EQ(rec.result.output_tokens, 20);
    EXPECT_EQ(rec.result.content_chunks, 20);
    EXPECT_LE(rec.result.ttft_s, rec.result.e2e_s);
    if (i > 0) {
      EXPECT_GT(rec.scheduled_s, r.records[i - 1].scheduled_s);
    }
  }
}

TEST_F(RunnerTest, TheSameSeedSendsTheSameRequestsAtTheSameTimes) {
  StartServer();
  LoadgenConfig c = Config();
  c.rate = 300;
  c.num_requests = 15;
  RunResult a = Run(c), b = Run(c);
  c.seed = 6;
  RunResult other = Run(c);
  ASSERT_EQ(a.records.size(), 15u);
  ASSERT_EQ(b.records.size(), 15u);
  bool differs = false;
  for (size_t i = 0; i < 15; ++i) {
    EXPECT_EQ(a.records[i].scheduled_s, b.records[i].scheduled_s);
    EXPECT_EQ(a.records[i].group, b.records[i].group);
    EXPECT_EQ(a.records[i].prompt_bytes, b.records[i].prompt_bytes);
    differs = differs || a.records[i].scheduled_s != other.records[i].scheduled_s;
  }
  EXPECT_TRUE(differs);
}

TEST_F(RunnerTest, AClosedLoopOnTheChatApiWithShareGptLengths) {
  StartServer();
  LoadgenConfig c = Config();
  c.endpoint = "/v1/chat/completions";
  c.workload = "sharegpt";
  c.sharegpt.prompt_tokens_median = 50;
  c.sharegpt.output_tokens_median = 10;
  c.sharegpt.max_output_tokens = 40;
  c.concurrency = 4;
  c.num_requests = 24;
  RunResult r = Run(c);
  EXPECT_EQ(r.summary.succeeded, 24);
  EXPECT_LE(r.summary.connections_opened, 4);  // one per worker, kept alive
  for (const RequestRecord& rec : r.records) {
    EXPECT_EQ(rec.result.output_tokens, rec.max_tokens);         // ignore_eos: exactly max_tokens
    EXPECT_GT(*rec.result.prompt_tokens, rec.prompt_bytes / 4);  // plus the chat template
  }
}

TEST_F(RunnerTest, AClosedLoopStopsSendingAtTheDuration) {
  StartServer();
  LoadgenConfig c = Config();
  c.concurrency = 2;
  c.duration_s = 0.3;
  RunResult r = Run(c);
  EXPECT_GT(r.summary.requests, 0);
  EXPECT_EQ(r.summary.failed, 0);
}

TEST_F(RunnerTest, MultiLoraAdaptersModelsimDoesNotKnowAre404s) {
  sim::ServerConfig sc;
  sc.engine.enable_lora = true;
  sc.engine.max_loras = 2;
  sc.lora_modules = {{"adapter-0", "/a0"}, {"adapter-1", "/a1"}, {"adapter-2", "/a2"}};
  StartServer(sc);
  LoadgenConfig c = Config();
  c.workload = "multi-lora";
  c.multi_lora.adapters = 6;  // tiers {0,1} 60%, {2,3} 30%, {4,5} 10%: 3..5 are unknown
  c.multi_lora.prompt_tokens = 16;
  c.multi_lora.output_tokens = 4;
  c.rate = 400;
  c.num_requests = 60;
  RunResult r = Run(c);
  int64_t unknown = 0;
  for (const RequestRecord& rec : r.records) {
    int k = std::stoi(rec.model.substr(8));
    if (k >= 3) {
      ++unknown;
      EXPECT_EQ(rec.result.status, 404) << rec.model;
      EXPECT_THAT(rec.result.error, HasSubstr("does not exist"));
    } else {
      EXPECT_TRUE(rec.result.ok()) << rec.model << ": " << rec.result.error;
    }
  }
  EXPECT_GT(unknown, 0);
  EXPECT_EQ(r.summary.errors_by_status.at(404), unknown);
  EXPECT_EQ(r.summary.succeeded, 60 - unknown);
}

TEST_F(RunnerTest, InjectedFaultsAreCountedByStatus) {
  sim::ServerConfig sc;
  sc.faults.error_rate = 0.3;
  sc.faults.error_status = 503;
  sc.faults.drop_rate = 0.3;
  StartServer(sc);
  LoadgenConfig c = Config();
  c.concurrency = 8;
  c.num_requests = 80;
  RunResult r = Run(c);
  const Summary& s = r.summary;
  EXPECT_EQ(s.requests, 80);
  EXPECT_EQ(s.succeeded + s.failed, 80);
  ASSERT_GT(s.errors_by_status.count(503), 0u);
  ASSERT_GT(s.errors_by_status.count(0), 0u);  // dropped after the first token
  EXPECT_EQ(s.errors_by_status.at(503), s.errors_by_kind.at("http_status"));
  EXPECT_EQ(s.errors_by_status.at(0), s.errors_by_kind.at("transport"));
  EXPECT_EQ(s.errors_by_status.at(503) + s.errors_by_status.at(0), s.failed);
  for (const RequestRecord& rec : r.records) {
    if (rec.result.error_kind == ErrorKind::kTransport) {
      EXPECT_EQ(rec.result.output_tokens, 1) << rec.result.error;  // the first token came
    }
  }
  EXPECT_EQ(s.output_tokens, s.succeeded * 20);
}

TEST_F(RunnerTest, HungRequestsTimeOut) {
  sim::ServerConfig sc;
  sc.faults.hang_rate = 1;
  StartServer(sc);
  LoadgenConfig c = Config();
  c.concurrency = 3;
  c.num_requests = 3;
  c.timeout_s = 0.2;
  RunResult r = Run(c);
  EXPECT_EQ(r.summary.failed, 3);
  EXPECT_EQ(r.summary.errors_by_kind.at("timeout"), 3);
  EXPECT_EQ(r.summary.errors_by_status.at(0), 3);
}

TEST_F(RunnerTest, LongPromptsOf220KbGoThrough) {
  StartServer();
  LoadgenConfig c = Config();
  c.workload = "long-prompt";
  c.long_prompt.output_tokens = 3;
  c.concurrency = 2;
  c.num_requests = 2;
  RunResult r = Run(c);
  EXPECT_EQ(r.summary.succeeded, 2);
  for (const RequestRecord& rec : r.records) {
    EXPECT_EQ(rec.prompt_bytes, 220'000);
    EXPECT_EQ(rec.result.prompt_tokens, 55'000);
  }
}

TEST_F(RunnerTest, AHostNameGoesToAnAddressThatAccepts) {
  StartServer();  // IPv4 only, while localhost may resolve to ::1 first
  LoadgenConfig c = Config();
  c.target = StrCat("http://localhost:", port_);
  c.rate = 100;
  c.num_requests = 3;
  EXPECT_EQ(Run(c).summary.succeeded, 3);
}

TEST_F(RunnerTest, AnUnresolvableHostIsAnError) {
  LoadgenConfig c = Config();
  c.target = "http://no-such-host.invalid:80";
  c.rate = 1;
  auto r = RunLoad(c);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  c.rate = 0;
  EXPECT_EQ(RunLoad(c).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace epp::loadgen
