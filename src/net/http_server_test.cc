#include "net/http_server.h"

#include <boost/asio/io_context.hpp>
#include <optional>

#include "gtest/gtest.h"
#include "net/http_client.h"

namespace epp::net {
namespace {

absl::StatusOr<std::string> Get(uint16_t port, const std::string& target) {
  boost::asio::io_context io;
  HttpGetClient client(io, "127.0.0.1", port, target, {});
  std::optional<absl::StatusOr<std::string>> result;
  client.Get([&](absl::StatusOr<std::string> r) { result = std::move(r); });
  io.run();
  return *result;
}

TEST(HttpServerTest, ServesTheHandlersAnswers) {
  HttpServer server("127.0.0.1", 0, [](const std::string& method, const std::string& target) {
    if (target == "/debug/endpoints") return HttpResponse{200, "application/json", "[]"};
    return HttpResponse{404, "text/plain", "not found\n"};
  });
  auto port = server.Start();
  ASSERT_TRUE(port.ok()) << port.status();
  auto ok = Get(*port, "/debug/endpoints");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, "[]");
  auto missing = Get(*port, "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("HTTP 404"), std::string::npos);
  server.Stop();
}

TEST(HttpServerTest, BadAddressAndBusyPort) {
  HttpServer bad("not-an-ip", 0,
                 [](const std::string&, const std::string&) { return HttpResponse{}; });
  EXPECT_EQ(bad.Start().status().code(), absl::StatusCode::kInvalidArgument);

  HttpServer first("127.0.0.1", 0,
                   [](const std::string&, const std::string&) { return HttpResponse{}; });
  auto port = first.Start();
  ASSERT_TRUE(port.ok());
  HttpServer second("127.0.0.1", *port,
                    [](const std::string&, const std::string&) { return HttpResponse{}; });
  auto again = second.Start();
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(again.status().message().find(std::to_string(*port)), std::string::npos);
}

}  // namespace
}  // namespace epp::net
