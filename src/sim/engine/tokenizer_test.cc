#include "sim/engine/tokenizer.h"

#include <gtest/gtest.h>

namespace epp::sim {
namespace {

TEST(TokenizerTest, FourBytesPerTokenRoundedUp) {
  EXPECT_EQ(CountTokens(""), 0u);
  EXPECT_EQ(CountTokens("abcd"), 1u);
  EXPECT_EQ(CountTokens("abcde"), 2u);
  EXPECT_EQ(Tokenize("abcdefgh").size(), 2u);
  EXPECT_EQ(Tokenize("abcdefghi").size(), 3u);
}

TEST(TokenizerTest, IdsAreTheBytesAndRoundTrip) {
  auto t = Tokenize("abcdX");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], 0x64636261u);
  EXPECT_EQ(t[1], static_cast<TokenId>('X'));
  EXPECT_EQ(Detokenize(t), "abcdX");
}

TEST(TokenizerTest, SharedPrefixGivesSharedTokens) {
  std::string system(64, 's');
  auto a = Tokenize(system + "question one");
  auto b = Tokenize(system + "another question");
  ASSERT_GT(a.size(), 16u);
  ASSERT_GT(b.size(), 16u);
  for (size_t i = 0; i < 16; ++i) EXPECT_EQ(a[i], b[i]) << i;
  EXPECT_NE(a[16], b[16]);
}

TEST(TokenizerTest, ChatTemplateIsFixedAndOpensTheAssistantTurn) {
  std::string out = RenderChat({{"system", "be brief"}, {"user", "hi"}});
  EXPECT_EQ(out,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nbe brief<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // Two conversations with the same system message share the rendered prefix.
  std::string other = RenderChat({{"system", "be brief"}, {"user", "something else"}});
  EXPECT_EQ(out.substr(0, 60), other.substr(0, 60));
}

}  // namespace
}  // namespace epp::sim
