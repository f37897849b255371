// Hot-path cost of one request: parse the body and pick among 100 endpoints, alone (Director)
// and through the whole ext_proc stream state machine (headers + 62,000-byte body chunks in,
// header answer + echoed body chunks out).
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "app/builtin_plugins.h"
#include "config/endpoint_picker_config.h"
#include "datastore/datastore.h"
#include "extproc/protocol_keys.h"
#include "extproc/stream_handler.h"
#include "requestcontrol/director.h"
#include "scheduling/scheduler.h"

namespace epp {
namespace {

constexpr char kConfig[] = R"(
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: max-score-picker
)";

struct Fixture {
  Fixture() {
    RegisterBuiltinPluginsInto(registry);
    auto cfg = config::ParseEndpointPickerConfig(kConfig);
    plugins = *config::InstantiatePlugins(*cfg, registry);
    scheduler = *scheduling::BuildScheduler(*cfg, *plugins, registry);
    std::vector<datastore::Endpoint> eps;
    for (int i = 0; i < 100; ++i) {
      eps.push_back(datastore::MakeEndpoint(
          "pod-" + std::to_string(i), "default",
          "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1), 8000));
    }
    store.ReplaceAll(std::move(eps));
    store.SetPoolReady(true);
    director = std::make_unique<requestcontrol::Director>(store, *scheduler);
  }
  static void RegisterBuiltinPluginsInto(PluginRegistry& r) { app::RegisterBuiltinPlugins(r); }

  PluginRegistry registry;
  std::unique_ptr<config::PluginSet> plugins;
  std::unique_ptr<scheduling::Scheduler> scheduler;
  datastore::Datastore store;
  std::unique_ptr<requestcontrol::Director> director;
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

// A chat request whose JSON is about `bytes` long.
std::string ChatBody(size_t bytes) {
  std::string head =
      R"({"model":"meta-llama/Llama-3.1-8B-Instruct","stream":true,)"
      R"("max_tokens":128,"messages":[{"role":"system","content":"You are helpful."},)"
      R"({"role":"user","content":")";
  std::string tail = R"("}]})";
  std::string filler;
  const std::string words = "the quick brown fox jumps over the lazy dog ";
  while (head.size() + filler.size() + tail.size() < bytes) filler += words;
  filler.resize(bytes - head.size() - tail.size());
  return head + filler + tail;
}

void BM_ParseAndPick(benchmark::State& state) {
  std::string body = ChatBody(static_cast<size_t>(state.range(0)));
  size_t size = body.size();
  body.reserve(size + request::ParsePaddingBytes());
  std::map<std::string, std::string, std::less<>> headers = {{":path", "/v1/chat/completions"}};
  requestcontrol::RequestInput in;
  in.path = "/v1/chat/completions";
  in.headers = &headers;
  for (auto _ : state) {
    auto d = F().director->HandleRequest(in, std::string_view(body.data(), size), body.capacity());
    if (!d.ok()) state.SkipWithError("decision failed");
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}
BENCHMARK(BM_ParseAndPick)->Arg(2 << 10)->Arg(220 << 10)->Arg(1 << 20);

void BM_StreamFullDuplex(benchmark::State& state) {
  namespace pb = ::envoy::service::ext_proc::v3;
  std::string body = ChatBody(static_cast<size_t>(state.range(0)));
  pb::ProcessingRequest headers;
  auto* h = headers.mutable_request_headers()->mutable_headers();
  auto add = [h](const char* k, const std::string& v) {
    auto* hv = h->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  };
  add(":path", "/v1/chat/completions");
  add(":method", "POST");
  add("content-type", "application/json");
  add("content-length", std::to_string(body.size()));
  add("x-request-id", "bench");
  std::vector<pb::ProcessingRequest> chunks;
  for (size_t off = 0; off < body.size(); off += extproc::kBodyChunkBytes) {
    pb::ProcessingRequest& c = chunks.emplace_back();
    size_t n = std::min(extproc::kBodyChunkBytes, body.size() - off);
    c.mutable_request_body()->set_body(body.substr(off, n));
    c.mutable_request_body()->set_end_of_stream(off + n == body.size());
  }
  extproc::StreamOptions opts;
  std::vector<pb::ProcessingResponse> out;
  for (auto _ : state) {
    extproc::StreamHandler handler(*F().director, opts);
    out.clear();
    (void)handler.OnMessage(headers, out);
    for (auto& c : chunks) (void)handler.OnMessage(c, out);
    if (out.empty() || handler.done()) state.SkipWithError("no routing answer");
    benchmark::DoNotOptimize(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_StreamFullDuplex)->Arg(2 << 10)->Arg(220 << 10)->Arg(1 << 20);

}  // namespace
}  // namespace epp

BENCHMARK_MAIN();
