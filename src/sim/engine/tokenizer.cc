#include "sim/engine/tokenizer.h"

namespace epp::sim {

std::vector<TokenId> Tokenize(std::string_view text) {
  std::vector<TokenId> out;
  out.reserve(CountTokens(text));
  for (size_t i = 0; i < text.size(); i += kBytesPerToken) {
    TokenId id = 0;
    size_t n = std::min<size_t>(kBytesPerToken, text.size() - i);
    for (size_t b = 0; b < n; ++b) {
      id |= static_cast<TokenId>(static_cast<unsigned char>(text[i + b])) << (8 * b);
    }
    out.push_back(id);
  }
  return out;
}

std::string Detokenize(const std::vector<TokenId>& tokens) {
  std::string out;
  out.reserve(tokens.size() * kBytesPerToken);
  for (TokenId id : tokens) {
    for (int b = 0; b < kBytesPerToken; ++b) {
      char c = static_cast<char>((id >> (8 * b)) & 0xff);
      if (c == '\0') break;
      out.push_back(c);
    }
  }
  return out;
}

std::string RenderChat(const std::vector<ChatMessage>& messages) {
  std::string out = "<|begin_of_text|>";
  for (const auto& m : messages) {
    out += "<|start_header_id|>";
    out += m.role;
    out += "<|end_header_id|>\n\n";
    out += m.content;
    out += "<|eot_id|>";
  }
  out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace epp::sim
