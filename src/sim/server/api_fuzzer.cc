// libFuzzer target for modelsim's request parsers (generation, tokenize, LoRA and fault
// bodies): arbitrary bytes must give a parsed request or a 400 error with a message, never a
// crash; an accepted generation request has a non-empty prompt and a sane max_tokens.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sim/server/api.h"
#include "sim/server/faults.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace epp::sim;
  if (size == 0) return 0;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto check_error = [](const api::Error& e) {
    if (e.status != 400 || e.message.empty()) std::abort();
  };
  switch (data[0] % 5) {
    case 0:
    case 1: {
      auto ep = data[0] % 5 == 0 ? api::Endpoint::kCompletions : api::Endpoint::kChatCompletions;
      auto r = api::ParseGeneration(ep, body);
      if (auto* e = std::get_if<api::Error>(&r)) {
        check_error(*e);
      } else {
        const auto& g = std::get<api::GenerationRequest>(r);
        if (g.prompt_tokens.empty() || g.max_tokens == 0 || g.max_tokens < -1) std::abort();
      }
      break;
    }
    case 2: {
      auto r = api::ParseTokenize(body);
      if (auto* e = std::get_if<api::Error>(&r)) check_error(*e);
      break;
    }
    case 3: {
      auto r = api::ParseLoraRequest(body, true);
      if (auto* e = std::get_if<api::Error>(&r)) {
        check_error(*e);
      } else if (std::get<api::LoraRequest>(r).name.empty()) {
        std::abort();
      }
      break;
    }
    case 4: {
      auto r = ApplyFaultsJson(Faults{}, body);
      if (auto* e = std::get_if<api::Error>(&r)) {
        check_error(*e);
      } else {
        const Faults& f = std::get<Faults>(r);
        if (!(f.error_rate >= 0 && f.error_rate <= 1)) std::abort();
      }
      break;
    }
  }
  return 0;
}
