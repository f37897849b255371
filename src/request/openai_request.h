// OpenAI-compatible request parsing for routing: the API kind from the path, and from the body
// the `model`, `stream`, `cache_salt` and the prompt-bearing field, kept as spans into the
// caller's buffer (no copies of the prompt). One pass of simdjson On-Demand.
#ifndef EPP_REQUEST_OPENAI_REQUEST_H_
#define EPP_REQUEST_OPENAI_REQUEST_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace epp::request {

enum class ApiKind { kCompletions, kChatCompletions, kEmbeddings, kResponses, kConversations };

std::string_view ApiKindName(ApiKind kind);

// Chooses the API by path suffix (query string ignored), as the reference does: unknown paths
// are treated as completions.
ApiKind ApiKindFromPath(std::string_view path);

// A byte range of the request body.
struct Span {
  size_t offset = 0;
  size_t length = 0;
  std::string_view In(std::string_view body) const { return body.substr(offset, length); }
};

struct ParsedRequest {
  ApiKind kind = ApiKind::kCompletions;
  std::string model;    // unescaped value of "model"
  Span model_token;     // raw JSON string token of "model", quotes included
  bool stream = false;  // "stream": true
  Span prompt;          // raw JSON of prompt / messages / input / items (per kind)
  std::string cache_salt;
};

// Number of spare bytes after the body that lets the parser read in place without copying.
// BodyBuffer users reserve this much extra capacity.
size_t ParsePaddingBytes();

// Parses `body` (capacity = bytes readable from body.data(), at least body.size()). Returns
// InvalidArgument with a message naming the field for: invalid JSON, a body that is not an
// object, a missing or non-string `model`, and a body invalid for the API kind (chat without
// messages, completions without a non-empty prompt, embeddings/responses without input,
// conversations without items). Thread-safe.
absl::StatusOr<ParsedRequest> ParseRequest(ApiKind kind, std::string_view body, size_t capacity);

// Returns `body` with the "model" token replaced by `new_model` (JSON-escaped). Other bytes are
// kept as they were.
std::string SpliceModel(std::string_view body, Span model_token, std::string_view new_model);

}  // namespace epp::request

#endif  // EPP_REQUEST_OPENAI_REQUEST_H_
