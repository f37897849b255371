// libFuzzer target for what epp reads from the API server: watch streams (line splitting at any
// cut, event JSON) and the objects inside them (Pod, InferencePool, InferenceObjective,
// InferenceModelRewrite, Status), plus a list body's Status parsing. Nothing may crash, and the
// events seen must not depend on how the stream was cut.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "k8s/objects.h"
#include "k8s/reflector.h"

namespace {

std::vector<std::string> Run(std::string_view stream, size_t cut_every) {
  epp::k8s::WatchDecoder decoder;
  std::vector<std::string> seen;
  auto on_event = [&seen](const epp::k8s::WatchDecoder::Event& e) {
    std::string summary = std::to_string(static_cast<int>(e.type));
    auto pod = epp::k8s::DecodePod(e.object);
    summary += pod.ok() ? "p" + pod->meta.name : "-";
    auto pool = epp::k8s::DecodeInferencePool(e.object);
    summary += pool.ok() ? "i" + std::to_string(pool->target_ports.size()) : "-";
    auto objective = epp::k8s::DecodeInferenceObjective(e.object);
    summary += objective.ok() ? "o" : "-";
    auto rewrite = epp::k8s::DecodeInferenceModelRewrite(e.object);
    summary += rewrite.ok() ? "r" + std::to_string(rewrite->rewrite.rules.size()) : "-";
    summary += std::to_string(epp::k8s::DecodeApiStatus(e.object).code);
    seen.push_back(summary);
    return absl::OkStatus();
  };
  absl::Status status = absl::OkStatus();
  for (size_t off = 0; off < stream.size() && status.ok(); off += cut_every) {
    status = decoder.Feed(stream.substr(off, cut_every), on_event);
  }
  seen.push_back(status.ok() ? "ok" : "error");
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t cut = 1 + data[0] % 64;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  auto whole = Run(stream, stream.size() + 1);
  auto pieces = Run(stream, cut);
  if (whole != pieces) std::abort();
  (void)epp::k8s::ParseApiStatus(stream);
  return 0;
}
