#include "scheduling/plugins/lru_map.h"

#include <gtest/gtest.h>

namespace epp::scheduling {
namespace {

TEST(LruMapTest, PutGetAndEvictLeastRecentlyPut) {
  LruMap<int> m(2);
  m.Put("a", 1);
  m.Put("b", 2);
  ASSERT_NE(m.Get("a"), nullptr);
  EXPECT_EQ(*m.Get("a"), 1);
  m.Put("a", 10);  // a is now the most recent; b the least
  m.Put("c", 3);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.Get("b"), nullptr);
  EXPECT_EQ(*m.Get("a"), 10);
  EXPECT_EQ(*m.Get("c"), 3);
}

TEST(LruMapTest, GetDoesNotRefresh) {
  LruMap<int> m(2);
  m.Put("a", 1);
  m.Put("b", 2);
  EXPECT_NE(m.Get("a"), nullptr);
  m.Put("c", 3);
  EXPECT_EQ(m.Get("a"), nullptr);
  EXPECT_NE(m.Get("b"), nullptr);
}

TEST(LruMapTest, EraseAndDropOldestWhile) {
  LruMap<int> m(10);
  for (int i = 0; i < 5; ++i) m.Put(std::string(1, static_cast<char>('a' + i)), i);
  EXPECT_TRUE(m.Erase("c"));
  EXPECT_FALSE(m.Erase("c"));
  // Oldest first: a(0), b(1), d(3), e(4); drop while value < 3.
  EXPECT_EQ(m.DropOldestWhile([](int v) { return v < 3; }), 2u);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.Get("a"), nullptr);
  EXPECT_NE(m.Get("d"), nullptr);
  EXPECT_EQ(m.DropOldestWhile([](int) { return true; }), 2u);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.DropOldestWhile([](int) { return true; }), 0u);
}

TEST(LruMapTest, ZeroCapacityMeansOne) {
  LruMap<int> m(0);
  m.Put("a", 1);
  m.Put("b", 2);
  EXPECT_EQ(m.size(), 1u);
  EXPECT_NE(m.Get("b"), nullptr);
}

}  // namespace
}  // namespace epp::scheduling
