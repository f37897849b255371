#include "common/host_port.h"

#include "gtest/gtest.h"

namespace epp {
namespace {

TEST(HostPortTest, JoinBracketsIpv6) {
  EXPECT_EQ(JoinHostPort("10.0.0.1", 8000), "10.0.0.1:8000");
  EXPECT_EQ(JoinHostPort("::1", 8000), "[::1]:8000");
  EXPECT_EQ(JoinHostPort("fd00::a:b", 1), "[fd00::a:b]:1");
}

TEST(HostPortTest, SplitValid) {
  struct Case {
    const char* in;
    const char* host;
    uint16_t port;
  } cases[] = {
      {"10.0.0.1:8000", "10.0.0.1", 8000},
      {"[::1]:9", "::1", 9},
      {"model-a.svc:65535", "model-a.svc", 65535},
  };
  for (const auto& c : cases) {
    auto hp = SplitHostPort(c.in);
    ASSERT_TRUE(hp.ok()) << c.in << ": " << hp.status();
    EXPECT_EQ(hp->host, c.host);
    EXPECT_EQ(hp->port, c.port);
  }
}

TEST(HostPortTest, SplitInvalid) {
  for (const char* in : {"", "10.0.0.1", "10.0.0.1:", ":80", "10.0.0.1:0", "10.0.0.1:65536",
                         "::1:80", "[::1]80", "[::1]:", "h:8x"}) {
    auto hp = SplitHostPort(in);
    EXPECT_FALSE(hp.ok()) << in;
    if (!hp.ok()) {
      EXPECT_NE(hp.status().message().find("invalid host:port"), std::string::npos);
    }
  }
}

TEST(HostPortTest, IpLiteral) {
  EXPECT_TRUE(IsIpLiteral("127.0.0.1"));
  EXPECT_TRUE(IsIpLiteral("::1"));
  EXPECT_FALSE(IsIpLiteral("localhost"));
  EXPECT_FALSE(IsIpLiteral("[::1]"));
}

TEST(HostPortTest, HostOf) {
  EXPECT_EQ(HostOf("10.0.0.1:80"), "10.0.0.1");
  EXPECT_EQ(HostOf("[::1]:80"), "::1");
  EXPECT_EQ(HostOf("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(HostOf("::1"), "::1");
}

}  // namespace
}  // namespace epp
