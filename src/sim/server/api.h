// The OpenAI-compatible API as vLLM serves it, for modelsim: request parsing and validation
// (with vLLM's error shape and status codes) and the response bodies and SSE chunks, framed
// and ordered as vLLM frames them. Pure functions; no I/O.
#ifndef EPP_SIM_SERVER_API_H_
#define EPP_SIM_SERVER_API_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sim/engine/tokenizer.h"

namespace epp::sim::api {

// An error answer: HTTP status, vLLM's error type and a message naming the field.
struct Error {
  int status = 400;
  std::string type = "BadRequestError";
  std::string message;
};
Error BadRequest(std::string message);
Error NotFound(std::string message);

// {"error":{"message":...,"type":...,"param":null,"code":<status>}} (vLLM >= 0.10.1).
std::string ErrorJson(const Error& e);

enum class Endpoint { kCompletions, kChatCompletions };

struct GenerationRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;  // as given; empty when absent (the server uses its first served name)
  std::vector<TokenId> prompt_tokens;
  std::string prompt_text;  // the prompt or the rendered chat ("" for token-id prompts)
  int max_tokens = -1;      // -1: not given
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage = false;
  bool ignore_eos = false;
  std::string cache_salt;
};

// Parses a /v1/completions or /v1/chat/completions body. Accepted prompts: a string, a list of
// token ids, or a one-element list of either; chat messages whose content is a string or a list
// of text parts. Batched prompts and n > 1 are refused with 400 naming the field.
std::variant<GenerationRequest, Error> ParseGeneration(Endpoint endpoint, std::string_view body);

// /tokenize body: {"prompt": ...} or {"messages": [...]}, optional "model".
struct TokenizeRequest {
  std::string model;
  std::vector<TokenId> tokens;
};
std::variant<TokenizeRequest, Error> ParseTokenize(std::string_view body);
std::string TokenizeResponseJson(const std::vector<TokenId>& tokens, int max_model_len);

// /v1/load_lora_adapter {"lora_name","lora_path"} and /v1/unload_lora_adapter {"lora_name"}.
struct LoraRequest {
  std::string name;
  std::string path;
};
std::variant<LoraRequest, Error> ParseLoraRequest(std::string_view body, bool need_path);

// Synthetic output: the text of the k-th sampled token of a request (4 bytes, like the
// tokenizer's tokens, so re-tokenizing the output gives the same token count).
std::string_view TokenText(uint64_t seed, int k);

// Identity of one response.
struct ResponseMeta {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string id;  // "cmpl-…" or "chatcmpl-…"
  int64_t created = 0;
  std::string model;
};

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

// One SSE event ("data: {...}\n\n") carrying `text` for choice 0; `finish_reason` is empty
// (null) or the reason ("stop", "length", "abort"); `usage`, when given, is attached
// (continuous usage stats).
std::string StreamChunk(const ResponseMeta& m, std::string_view text,
                        std::string_view finish_reason, const Usage* usage);
// The chat stream's opening event: delta {"role":"assistant","content":""}.
std::string ChatRoleChunk(const ResponseMeta& m, const Usage* usage);
// The final usage event (choices: []), sent with stream_options.include_usage.
std::string UsageChunk(const ResponseMeta& m, const Usage& usage);
inline constexpr std::string_view kDoneEvent = "data: [DONE]\n\n";
// An error inside an already-started stream: data: {"error":{...}}.
std::string StreamErrorEvent(const Error& e);

// The non-streaming body.
std::string CompleteResponse(const ResponseMeta& m, std::string_view text,
                             std::string_view finish_reason, const Usage& usage);

// /v1/models: the served names, then the adapters with their parent.
struct ModelCard {
  std::string id;
  std::string root;
  std::string parent;  // empty for base models
};
std::string ModelsJson(const std::vector<ModelCard>& cards, int64_t created, int max_model_len);

}  // namespace epp::sim::api

#endif  // EPP_SIM_SERVER_API_H_
