#include "scheduling/plugins/prefix/prefix_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

namespace epp::scheduling {
namespace {

using ::testing::ElementsAre;

std::vector<std::string_view> Servers(std::initializer_list<std::string_view> s) { return s; }

TEST(PrefixIndexTest, MatchCountsPerServerUntilNoServerHoldsAHash) {
  PrefixIndex idx;
  std::vector<uint64_t> a = {1, 2, 3, 4};
  idx.Insert("s1", a, 100);
  std::vector<uint64_t> b = {1, 2};
  idx.Insert("s2", b, 100);
  std::vector<uint64_t> q = {1, 2, 3, 9, 4};
  // Walk 1, 2, 3 (9 is held by nobody: stop); s1 holds 3 of them, s2 two, s3 none.
  EXPECT_THAT(idx.Match(q, Servers({"s1", "s2", "s3"})), ElementsAre(3, 2, 0));
  std::vector<uint64_t> miss = {7, 1};
  EXPECT_THAT(idx.Match(miss, Servers({"s1"})), ElementsAre(0));
  EXPECT_EQ(idx.entries(), 6u);
  EXPECT_EQ(idx.servers(), 2u);
}

TEST(PrefixIndexTest, PerServerLruEvictsLeastRecentlyUsedFirst) {
  PrefixIndex idx;
  std::vector<uint64_t> first = {1, 2, 3};
  idx.Insert("s", first, 3);
  std::vector<uint64_t> touch = {1};
  idx.Insert("s", touch, 3);  // 1 becomes the most recent: order 2, 3, 1
  std::vector<uint64_t> more = {4};
  idx.Insert("s", more, 3);  // evicts 2
  std::vector<uint64_t> q1 = {1}, q2 = {2}, q3 = {3}, q4 = {4};
  EXPECT_THAT(idx.Match(q1, Servers({"s"})), ElementsAre(1));
  EXPECT_THAT(idx.Match(q2, Servers({"s"})), ElementsAre(0));
  EXPECT_THAT(idx.Match(q3, Servers({"s"})), ElementsAre(1));
  EXPECT_THAT(idx.Match(q4, Servers({"s"})), ElementsAre(1));
  EXPECT_EQ(idx.entries(), 3u);
}

TEST(PrefixIndexTest, EvictionOfOneServerKeepsTheOthersEntries) {
  PrefixIndex idx;
  std::vector<uint64_t> h = {5, 6};
  idx.Insert("a", h, 10);
  idx.Insert("b", h, 10);
  std::vector<uint64_t> other = {7, 8};
  idx.Insert("a", other, 2);  // a now holds 7, 8 only
  EXPECT_THAT(idx.Match(h, Servers({"a", "b"})), ElementsAre(0, 2));
}

TEST(PrefixIndexTest, RemovedServersAreForgottenAndTheirIdsReused) {
  PrefixIndex idx;
  std::vector<uint64_t> h = {1, 2};
  idx.Insert("a", h, 10);
  idx.Insert("b", h, 10);
  std::vector<std::string> live = {"b"};
  idx.RetainOnly(live);
  EXPECT_THAT(idx.Match(h, Servers({"a", "b"})), ElementsAre(0, 2));
  idx.RemoveServer("b");
  EXPECT_EQ(idx.entries(), 0u);
  EXPECT_EQ(idx.servers(), 0u);
  idx.Insert("c", h, 10);
  EXPECT_THAT(idx.Match(h, Servers({"c"})), ElementsAre(2));
}

TEST(PrefixIndexTest, MemoryPerEntryStaysSmall) {
  PrefixIndex idx;
  std::vector<uint64_t> h(1000);
  for (int s = 0; s < 100; ++s) {
    for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint64_t>(s) * 1'000'003 + i;
    idx.Insert("s" + std::to_string(s), h, 1000);
  }
  ASSERT_EQ(idx.entries(), 100'000u);
  EXPECT_LE(idx.MemoryBytes() / idx.entries(), 64u);
}

TEST(PrefixIndexTest, ConcurrentInsertAndMatch) {
  PrefixIndex idx;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&idx, t] {
      std::vector<uint64_t> h(64);
      for (int round = 0; round < 200; ++round) {
        for (size_t i = 0; i < h.size(); ++i) h[i] = (round % 7) * 100 + i;
        std::string server = "s" + std::to_string((t + round) % 5);
        idx.Insert(server, h, 300);
        idx.Match(h, Servers({"s0", "s1", "s2"}));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(idx.entries(), 5u * 300u);
}

}  // namespace
}  // namespace epp::scheduling
