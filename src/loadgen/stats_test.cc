#include "loadgen/stats.h"

#include <gtest/gtest.h>

namespace epp::loadgen {
namespace {

TEST(PercentileTest, InterpolatesBetweenClosestRanksAsNumpyDoes) {
  struct Case {
    std::vector<double> sorted;
    double p;
    double want;
  };
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  const Case kCases[] = {
      {{1, 2}, 50, 1.5},       {{7}, 99, 7},        {{1, 2, 3, 4}, 0, 1}, {{1, 2, 3, 4}, 100, 4},
      {{1, 2, 3, 4}, 50, 2.5}, {hundred, 50, 50.5}, {hundred, 90, 90.1},  {hundred, 99, 99.01},
      {{0, 10}, 25, 2.5},
  };
  for (const Case& c : kCases) {
    EXPECT_DOUBLE_EQ(Percentile(c.sorted, c.p), c.want) << c.sorted.size() << " p" << c.p;
  }
}

TEST(SummarizeTest, SortsAndSummarizes) {
  Distribution d = Summarize({5, 1, 4, 2, 3});
  EXPECT_EQ(d.count, 5);
  EXPECT_DOUBLE_EQ(d.mean, 3);
  EXPECT_DOUBLE_EQ(d.min, 1);
  EXPECT_DOUBLE_EQ(d.max, 5);
  EXPECT_DOUBLE_EQ(d.p50, 3);
  EXPECT_DOUBLE_EQ(d.p90, 4.6);
  EXPECT_DOUBLE_EQ(d.p99, 4.96);
}

TEST(SummarizeTest, NoSamplesGiveZeros) {
  Distribution d = Summarize({});
  EXPECT_EQ(d.count, 0);
  EXPECT_EQ(d.mean, 0);
  EXPECT_EQ(d.p99, 0);
}

}  // namespace
}  // namespace epp::loadgen
