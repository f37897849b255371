// libFuzzer target for the response model-name rewriter, differential: the body fed in pieces
// cut where the input says must come out exactly as the body rewritten in one piece, and no
// more than max_held_bytes() may ever be held back.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "request/response_model_rewriter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using epp::request::ResponseModelRewriter;
  if (size < 2) return 0;
  // Byte 0: target length (1..8) taken from the start of the body, so matches are likely;
  // byte 1: cut density.
  const std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  const size_t target_len = 1 + data[0] % 8;
  const std::string target(body.substr(0, std::min(target_len, body.size())));
  if (target.empty()) return 0;
  const unsigned density = 1 + data[1] % 16;

  ResponseModelRewriter whole(target, "client-name");
  std::string want;
  whole.Process(body, /*last=*/true, want);

  ResponseModelRewriter pieces(target, "client-name");
  std::string got;
  size_t prev = 0;
  for (size_t i = 1; i < body.size(); ++i) {
    if ((static_cast<unsigned char>(body[i]) + i) % density != 0) continue;
    pieces.Process(body.substr(prev, i - prev), /*last=*/false, got);
    if (pieces.held_bytes() > pieces.max_held_bytes()) std::abort();
    prev = i;
  }
  pieces.Process(body.substr(prev), /*last=*/true, got);
  if (pieces.held_bytes() != 0 || got != want) std::abort();
  return 0;
}
