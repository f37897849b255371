#include "sim/engine/block_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace epp::sim {
namespace {

using ::testing::ElementsAre;

TEST(BlockPoolTest, NullBlockIsReservedAndUsageCountsReferencedBlocks) {
  BlockPool pool(5, true);  // blocks 1..4 usable
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_THAT(pool.FreeQueueForTest(), ElementsAre(1, 2, 3, 4));
  EXPECT_DOUBLE_EQ(pool.Usage(), 0.0);
  std::vector<BlockId> got;
  pool.Take(3, &got);
  EXPECT_THAT(got, ElementsAre(1, 2, 3));
  EXPECT_DOUBLE_EQ(pool.Usage(), 0.75);
  pool.Free(got);
  EXPECT_DOUBLE_EQ(pool.Usage(), 0.0);
}

TEST(BlockPoolTest, FreedBlocksGoToTheTailInTheOrderGiven) {
  BlockPool pool(7, true);
  std::vector<BlockId> a;
  pool.Take(3, &a);  // 1 2 3
  EXPECT_THAT(pool.FreeQueueForTest(), ElementsAre(4, 5, 6));
  std::vector<BlockId> reversed(a.rbegin(), a.rend());
  pool.Free(reversed);
  EXPECT_THAT(pool.FreeQueueForTest(), ElementsAre(4, 5, 6, 3, 2, 1));
}

TEST(BlockPoolTest, AllocationEvictsTheLeastRecentlyFreedCachedBlock) {
  BlockPool pool(4, true);  // 1 2 3
  std::vector<BlockId> a;
  pool.Take(3, &a);
  pool.Cache(1, 100);
  pool.Cache(2, 200);
  pool.Cache(3, 300);
  pool.Free(std::vector<BlockId>{3, 2, 1});  // suffix first
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_TRUE(pool.Lookup(300).has_value());  // free but still cached
  std::vector<BlockId> b;
  pool.Take(1, &b);
  EXPECT_THAT(b, ElementsAre(3));
  EXPECT_FALSE(pool.Lookup(300).has_value());
  EXPECT_EQ(pool.evictions(), 1u);
  EXPECT_EQ(*pool.Lookup(100), 1);
  EXPECT_EQ(*pool.Lookup(200), 2);
}

TEST(BlockPoolTest, TouchTakesAFreeCachedBlockOffTheQueue) {
  BlockPool pool(4, true);
  std::vector<BlockId> a;
  pool.Take(1, &a);
  pool.Cache(a[0], 42);
  pool.Free(a);
  EXPECT_EQ(pool.num_free(), 3);
  pool.Touch(a);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_EQ(pool.ref_count(a[0]), 1);
  EXPECT_THAT(pool.FreeQueueForTest(), ElementsAre(2, 3));
  // A second reference does not touch the queue again.
  pool.Touch(a);
  EXPECT_EQ(pool.ref_count(a[0]), 2);
  pool.Free(a);
  EXPECT_EQ(pool.num_free(), 2);
  pool.Free(a);
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_TRUE(pool.is_cached(a[0]));
}

TEST(BlockPoolTest, MatchPrefixStopsAtTheFirstMiss) {
  BlockPool pool(6, true);
  std::vector<BlockId> a;
  pool.Take(3, &a);
  pool.Cache(a[0], 1);
  pool.Cache(a[1], 2);
  pool.Cache(a[2], 4);
  std::vector<BlockHash> hashes = {1, 2, 3, 4};
  EXPECT_EQ(pool.MatchPrefix(hashes), 2);
  std::vector<BlockHash> miss_first = {9, 1};
  EXPECT_EQ(pool.MatchPrefix(miss_first), 0);
}

TEST(BlockPoolTest, DuplicateHashKeepsTheFirstBlock) {
  BlockPool pool(4, true);
  std::vector<BlockId> a;
  pool.Take(2, &a);
  pool.Cache(a[0], 7);
  pool.Cache(a[1], 7);
  EXPECT_EQ(*pool.Lookup(7), a[0]);
  EXPECT_FALSE(pool.is_cached(a[1]));
}

TEST(BlockPoolTest, CachingOffNeverHits) {
  BlockPool pool(4, false);
  std::vector<BlockId> a;
  pool.Take(1, &a);
  pool.Cache(a[0], 7);
  std::vector<BlockHash> h = {7};
  EXPECT_EQ(pool.MatchPrefix(h), 0);
  EXPECT_FALSE(pool.Lookup(7).has_value());
}

TEST(BlockPoolTest, ResetCacheForgetsHashesButKeepsReferences) {
  BlockPool pool(4, true);
  std::vector<BlockId> a;
  pool.Take(1, &a);
  pool.Cache(a[0], 7);
  pool.ResetCache();
  EXPECT_FALSE(pool.Lookup(7).has_value());
  EXPECT_EQ(pool.ref_count(a[0]), 1);
}

}  // namespace
}  // namespace epp::sim
