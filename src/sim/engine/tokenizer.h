// A deterministic tokenizer approximation for the simulator: every 4 bytes of text are one
// token (the last token may be shorter), and the token id is those bytes packed little-endian.
// Ids are therefore stable across requests and processes, and two texts that share a prefix
// share the tokens of that prefix, so shared prefixes give shared KV blocks exactly where
// epp's approximate prefix index (4 characters per token) expects them. Chat messages are
// rendered with one fixed Llama-3-style template before tokenizing.
#ifndef EPP_SIM_ENGINE_TOKENIZER_H_
#define EPP_SIM_ENGINE_TOKENIZER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace epp::sim {

using TokenId = uint32_t;

inline constexpr int kBytesPerToken = 4;

// Number of tokens `text` becomes (ceil(bytes / 4)).
inline size_t CountTokens(std::string_view text) {
  return (text.size() + kBytesPerToken - 1) / kBytesPerToken;
}

// The token ids of `text`.
std::vector<TokenId> Tokenize(std::string_view text);

// The text of `tokens` (inverse of Tokenize for ids it produced; trailing zero bytes dropped).
std::string Detokenize(const std::vector<TokenId>& tokens);

struct ChatMessage {
  std::string role;
  std::string content;
};

// Renders chat messages with the fixed template (system/user/assistant headers, end-of-turn
// markers) and opens the assistant turn, as vLLM's chat template does with
// add_generation_prompt.
std::string RenderChat(const std::vector<ChatMessage>& messages);

}  // namespace epp::sim

#endif  // EPP_SIM_ENGINE_TOKENIZER_H_
