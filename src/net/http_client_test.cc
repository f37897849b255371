#include "net/http_client.h"

#include <boost/asio/io_context.hpp>
#include <optional>

#include "gtest/gtest.h"
#include "testing/http_test_server.h"

namespace epp::net {
namespace {

using ::epp::testing::HttpTestServer;

// Runs one GET to completion on a fresh io_context loop.
absl::StatusOr<std::string> GetOnce(boost::asio::io_context& io, HttpGetClient& client) {
  std::optional<absl::StatusOr<std::string>> result;
  client.Get([&](absl::StatusOr<std::string> r) { result = std::move(r); });
  io.restart();
  while (!result && io.run_one() > 0) {
  }
  if (!result) return absl::InternalError("loop ended without a result");
  return *result;
}

TEST(HttpGetClientTest, ReusesTheConnection) {
  HttpTestServer server([](const std::string& target) {
    return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 200, "page " + target};
  });
  boost::asio::io_context io;
  HttpGetClient client(io, "127.0.0.1", server.port(), "/metrics", {});
  for (int i = 0; i < 5; ++i) {
    auto r = GetOnce(io, client);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "page /metrics");
  }
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpGetClientTest, ReconnectsWhenTheServerCloses) {
  HttpTestServer server([](const std::string&) {
    return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 200, "x", /*keep_alive=*/false};
  });
  boost::asio::io_context io;
  HttpGetClient client(io, "127.0.0.1", server.port(), "/metrics", {});
  for (int i = 0; i < 3; ++i) {
    auto r = GetOnce(io, client);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  EXPECT_EQ(server.connections(), 3);
}

TEST(HttpGetClientTest, Errors) {
  struct Case {
    HttpTestServer::Action action;
    int status;
    absl::StatusCode want;
  } cases[] = {
      {HttpTestServer::Action::kRespond, 500, absl::StatusCode::kInternal},
      {HttpTestServer::Action::kHang, 200, absl::StatusCode::kDeadlineExceeded},
      {HttpTestServer::Action::kStreamForever, 200, absl::StatusCode::kOutOfRange},
      {HttpTestServer::Action::kClose, 200, absl::StatusCode::kUnavailable},
  };
  for (const auto& c : cases) {
    HttpTestServer server([&](const std::string&) {
      return HttpTestServer::Reply{c.action, c.status, "body"};
    });
    boost::asio::io_context io;
    HttpGetClient::Options o;
    o.timeout = std::chrono::milliseconds(300);
    o.body_limit = 64 << 10;
    HttpGetClient client(io, "127.0.0.1", server.port(), "/metrics", o);
    auto r = GetOnce(io, client);
    ASSERT_FALSE(r.ok()) << static_cast<int>(c.action);
    EXPECT_EQ(r.status().code(), c.want) << r.status();
  }
}

TEST(HttpGetClientTest, HttpErrorStatusKeepsTheConnection) {
  HttpTestServer server([](const std::string&) {
    return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 403, "forbidden"};
  });
  boost::asio::io_context io;
  HttpGetClient client(io, "127.0.0.1", server.port(), "/metrics", {});
  for (int i = 0; i < 3; ++i) {
    auto r = GetOnce(io, client);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
    EXPECT_NE(r.status().message().find("HTTP 403"), std::string::npos) << r.status();
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpGetClientTest, ConnectionRefusedAndBadAddress) {
  boost::asio::io_context io;
  uint16_t port;
  {
    HttpTestServer server([](const std::string&) { return HttpTestServer::Reply{}; });
    port = server.port();
  }  // closed: nothing listens there now
  HttpGetClient refused(io, "127.0.0.1", port, "/metrics", {});
  auto r = GetOnce(io, refused);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();

  HttpGetClient bad(io, "not-an-ip", 80, "/metrics", {});
  r = GetOnce(io, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
}

}  // namespace
}  // namespace epp::net
