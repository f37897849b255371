// clustersim: compares routing policies on N simulated vLLM servers in virtual time (see
// src/sim/cluster/cluster.h). Prints a markdown table, one row per router, all on the same
// workload and seed.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "CLI/CLI.hpp"
#include "common/strings.h"
#include "loadgen/workload.h"
#include "sim/cluster/cluster.h"
#include "sim/cluster/peer_routers.h"

namespace epp::app {
namespace {

int Run(int argc, char** argv) {
  CLI::App app{"clustersim: routing policies on simulated vLLM servers, in virtual time"};
  sim::ClusterConfig cluster;
  loadgen::Arrivals arrivals;
  std::string workload = "shared-prefix";
  loadgen::SharedPrefixSpec sp;
  loadgen::MultiLoraSpec ml;
  loadgen::NoSharingSpec ns;
  std::vector<std::string> routers = {"round-robin", "least-request", "epp-default",
                                      "epp-load-aware"};
  bool no_prefix_caching = false;
  std::string out;
  app.add_option("--servers", cluster.servers, "Simulated servers")->capture_default_str();
  app.add_option("--workload", workload, "shared-prefix, multi-lora or no-sharing")
      ->capture_default_str();
  app.add_option("--rate", arrivals.rate, "Requests per second")->capture_default_str();
  app.add_option("--seconds", arrivals.seconds, "Arrivals for this long")->capture_default_str();
  app.add_option("--seed", arrivals.seed, "Workload seed")->capture_default_str();
  bool constant = false;
  app.add_flag("--constant", constant, "Constant arrivals instead of Poisson");
  app.add_option("--groups", sp.groups, "shared-prefix: groups")->capture_default_str();
  app.add_option("--prompts-per-group", sp.prompts_per_group, "shared-prefix: prompts per group")
      ->capture_default_str();
  app.add_option("--system-tokens", sp.system_tokens, "shared-prefix: system prompt tokens")
      ->capture_default_str();
  app.add_option("--question-tokens", sp.question_tokens, "shared-prefix: question tokens")
      ->capture_default_str();
  app.add_option("--output-tokens", sp.output_tokens, "shared-prefix: output tokens")
      ->capture_default_str();
  app.add_option("--adapters", ml.adapters, "multi-lora: adapters")->capture_default_str();
  app.add_option("--max-num-seqs", cluster.engine.max_num_seqs)->capture_default_str();
  app.add_option("--max-num-batched-tokens", cluster.engine.max_num_batched_tokens)
      ->capture_default_str();
  app.add_option("--num-gpu-blocks", cluster.engine.num_gpu_blocks)->capture_default_str();
  app.add_option("--block-size", cluster.engine.block_size)->capture_default_str();
  app.add_option("--max-model-len", cluster.engine.max_model_len)->capture_default_str();
  app.add_option("--max-loras", cluster.engine.max_loras)->capture_default_str();
  app.add_flag("--no-enable-prefix-caching", no_prefix_caching);
  app.add_option("--routers", routers,
                 "round-robin, least-request, random, sglang-cache-aware (SGLang/vLLM router "
                 "cache_aware, CLI defaults), sglang-cache-aware-rust (library defaults), "
                 "dynamo-kv (Dynamo KV router, --no-kv-events, defaults), aibrix-prefix-cache "
                 "(AIBrix prefix-cache, code defaults), production-stack-prefixaware "
                 "(vLLM production-stack prefixaware), "
                 "epp-default, epp-load-aware, epp-inflight, epp-random, or "
                 "epp-config:<EndpointPickerConfig "
                 "file with scheduling plugins only>")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--out", out, "Also append the table to this markdown file");
  CLI11_PARSE(app, argc, argv);
  arrivals.poisson = !constant;
  cluster.engine.enable_prefix_caching = !no_prefix_caching;
  if (workload == "multi-lora") cluster.enable_lora = true;
  if (auto st = sim::ValidateEngineConfig(cluster.engine); !st.ok()) {
    std::fprintf(stderr, "clustersim: %s\n", std::string(st.message()).c_str());
    return 2;
  }

  std::vector<loadgen::WorkRequest> requests;
  if (workload == "shared-prefix") {
    requests = loadgen::SharedPrefixWorkload(sp, arrivals);
  } else if (workload == "multi-lora") {
    requests = loadgen::MultiLoraWorkload(ml, arrivals);
  } else if (workload == "no-sharing") {
    requests = loadgen::NoSharingWorkload(ns, arrivals);
  } else {
    std::fprintf(stderr, "clustersim: --workload: unknown \"%s\"\n", workload.c_str());
    return 2;
  }

  std::string table = sim::ResultTableHeader();
  std::fputs(table.c_str(), stdout);
  for (const std::string& name : routers) {
    std::unique_ptr<sim::Router> router;
    if (name == "round-robin") {
      router = sim::MakeRoundRobinRouter(cluster.servers);
    } else if (name == "least-request") {
      router = sim::MakeLeastRequestRouter(cluster.servers, arrivals.seed);
    } else if (name == "random") {
      router = sim::MakeRandomRouter(cluster.servers, arrivals.seed);
    } else if (name == "sglang-cache-aware") {
      router =
          sim::MakeCacheAwareRouter(name, cluster.servers, sim::CacheAwareParams::CliDefaults());
    } else if (name == "sglang-cache-aware-rust") {
      router =
          sim::MakeCacheAwareRouter(name, cluster.servers, sim::CacheAwareParams::RustDefaults());
    } else if (name == "dynamo-kv") {
      sim::DynamoKvParams p;
      p.block_size = cluster.engine.block_size;  // --kv-cache-block-size defaults to the backend's
      p.seed = arrivals.seed;
      router = sim::MakeDynamoKvRouter(name, cluster.servers, p);
    } else if (name == "aibrix-prefix-cache") {
      sim::AibrixPrefixCacheParams p;
      p.seed = arrivals.seed;
      router = sim::MakeAibrixPrefixCacheRouter(name, cluster.servers, p);
    } else if (name == "production-stack-prefixaware") {
      sim::PrefixAwareParams p;
      p.seed = arrivals.seed;
      router = sim::MakeProductionStackPrefixAwareRouter(name, cluster.servers, p);
    } else {
      std::string yaml = sim::EppProfileConfig(name);
      if (yaml.empty() && name.rfind("epp-config:", 0) == 0) {
        std::ifstream f(name.substr(11));
        std::stringstream ss;
        ss << f.rdbuf();
        yaml = ss.str();
      }
      if (yaml.empty()) {
        std::fprintf(stderr, "clustersim: --routers: unknown router \"%s\"\n", name.c_str());
        return 2;
      }
      auto r = sim::MakeEppRouter(name, cluster.servers, yaml);
      if (!r.ok()) {
        std::fprintf(stderr, "clustersim: %s: %s\n", name.c_str(),
                     std::string(r.status().message()).c_str());
        return 2;
      }
      router = *std::move(r);
    }
    std::string row = sim::ResultTableRow(sim::RunCluster(cluster, requests, *router));
    std::fputs(row.c_str(), stdout);
    std::fflush(stdout);
    table += row;
  }
  if (!out.empty()) {
    std::ofstream f(out, std::ios::app);
    f << table;
  }
  return 0;
}

}  // namespace
}  // namespace epp::app

int main(int argc, char** argv) { return epp::app::Run(argc, argv); }
