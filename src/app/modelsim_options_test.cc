#include "app/modelsim_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace epp::app {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

absl::StatusOr<ModelsimOptions> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "modelsim");
  return ParseModelsimOptions(static_cast<int>(args.size()), args.data());
}

TEST(ModelsimOptionsTest, VllmFlagNames) {
  auto o = Parse({"--port",
                  "8123",
                  "--model",
                  "meta-llama/Llama-3.1-8B-Instruct",
                  "--served-model-name",
                  "llama",
                  "llama-alias",
                  "--max-num-seqs",
                  "128",
                  "--max-num-batched-tokens",
                  "2048",
                  "--block-size",
                  "32",
                  "--num-gpu-blocks-override",
                  "5000",
                  "--max-model-len",
                  "8192",
                  "--no-enable-prefix-caching",
                  "--enable-lora",
                  "--max-loras",
                  "2",
                  "--max-cpu-loras",
                  "4",
                  "--lora-modules",
                  "sql=/l/sql",
                  "tweet=/l/tweet",
                  "--dtype",
                  "bfloat16"});
  ASSERT_TRUE(o.ok()) << o.status();
  const sim::ServerConfig& s = o->server;
  EXPECT_EQ(s.port, 8123);
  EXPECT_THAT(s.served_model_names, ElementsAre("llama", "llama-alias"));
  EXPECT_EQ(s.engine.max_num_seqs, 128);
  EXPECT_EQ(s.engine.max_num_batched_tokens, 2048);
  EXPECT_EQ(s.engine.block_size, 32);
  EXPECT_EQ(s.engine.num_gpu_blocks, 5000);
  EXPECT_EQ(s.engine.max_model_len, 8192);
  EXPECT_FALSE(s.engine.enable_prefix_caching);
  EXPECT_TRUE(s.engine.enable_lora);
  EXPECT_EQ(s.engine.max_loras, 2);
  EXPECT_EQ(s.engine.max_cpu_loras, 4);
  EXPECT_THAT(s.lora_modules, ElementsAre(Pair("sql", "/l/sql"), Pair("tweet", "/l/tweet")));
  EXPECT_THAT(o->ignored_flags, ElementsAre("--dtype"));
}

TEST(ModelsimOptionsTest, SimulatorFlags) {
  auto o =
      Parse({"--time-scale", "10", "--engine", "sglang", "--sim-step-base-ms", "5",
             "--sim-prefill-ms-per-token", "0.05", "--sim-frontend-overhead-ms", "0",
             "--fault-error-rate", "0.1", "--fault-metrics-garbage", "--max-model-len", "4096"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server.time_scale, 10);
  EXPECT_EQ(o->server.dialect, sim::MetricsDialect::kSglang);
  EXPECT_EQ(o->server.engine.cost.step_base, absl::Milliseconds(5));
  EXPECT_EQ(o->server.engine.cost.per_prefill_token, absl::Microseconds(50));
  EXPECT_EQ(o->server.engine.cost.frontend_overhead, absl::ZeroDuration());
  EXPECT_DOUBLE_EQ(o->server.faults.error_rate, 0.1);
  EXPECT_TRUE(o->server.faults.metrics_garbage);
  EXPECT_TRUE(o->server.engine.enable_prefix_caching);
}

TEST(ModelsimOptionsTest, ErrorsNameTheFlag) {
  struct Case {
    std::vector<const char*> args;
    std::string_view message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--engine", "tgi"}, "--engine"},
           {{"--block-size", "7"}, "--block-size"},
           {{"--lora-modules", "noequals", "--enable-lora"}, "--lora-modules"},
           {{"--lora-modules", "a=b"}, "requires --enable-lora"},
           {{"--enable-prefix-caching", "--no-enable-prefix-caching"}, "contradict"},
           {{"--time-scale", "0"}, "--time-scale"},
           {{"--num-gpu-blocks-override", "100"}, "max_model_len"},
           {{"--no-such-flag"}, "no-such-flag"},
           {{"--fault-error-rate", "2"}, "--fault-error-rate"},
       }) {
    auto o = Parse(c.args);
    ASSERT_FALSE(o.ok()) << c.message;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(std::string(c.message)));
  }
}

TEST(ModelsimOptionsTest, HelpIsNotAnError) {
  auto o = Parse({"--help"});
  EXPECT_EQ(o.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("--max-num-seqs"));
}

}  // namespace
}  // namespace epp::app
