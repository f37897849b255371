// libFuzzer target for the request-body parser: arbitrary bytes must yield a parse or a clean
// InvalidArgument, never a crash; and splicing a new model into an accepted body must give a
// body that parses again with that model.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "request/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace epp::request;
  if (size == 0) return 0;
  // First byte picks the API kind; the rest is the body.
  ApiKind kind = static_cast<ApiKind>(data[0] % 5);
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto parsed = ParseRequest(kind, body, body.size());
  if (!parsed.ok()) {
    if (parsed.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  if (parsed->model_token.offset + parsed->model_token.length > body.size()) std::abort();
  if (parsed->prompt.offset + parsed->prompt.length > body.size()) std::abort();
  std::string spliced = SpliceModel(body, parsed->model_token, "fuzz\"model\n");
  auto again = ParseRequest(kind, spliced, spliced.size());
  if (!again.ok() || again->model != "fuzz\"model\n") std::abort();
  return 0;
}
