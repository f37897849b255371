#include "net/http_client.h"

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>

#include "gtest/gtest.h"
#include "net/tls.h"
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

// An HTTPS server on 127.0.0.1:0 with a fresh self-signed certificate: serves keep-alive GETs
// with "secure <target>" on its own thread, one connection at a time.
class TlsTestServer {
 public:
  TlsTestServer() : ctx_(boost::asio::ssl::context::tls_server), acceptor_(io_) {
    auto pair = GenerateSelfSigned();
    EXPECT_TRUE(pair.ok()) << pair.status();
    ctx_.use_certificate_chain(boost::asio::buffer(pair->cert_chain_pem));
    ctx_.use_private_key(boost::asio::buffer(pair->private_key_pem),
                         boost::asio::ssl::context::pem);
    using tcp = boost::asio::ip::tcp;
    tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~TlsTestServer() {
    stop_ = true;
    // A blocking accept() is not woken by closing the acceptor from another thread: connect.
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket wake(io);
    boost::system::error_code ignored;
    wake.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ignored);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_; }
  int requests() const { return requests_; }

 private:
  void Serve() {
    namespace http = boost::beast::http;
    while (!stop_) {
      boost::system::error_code ec;
      boost::asio::ip::tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      ++connections_;
      boost::asio::ssl::stream<boost::asio::ip::tcp::socket> tls(std::move(socket), ctx_);
      tls.handshake(boost::asio::ssl::stream_base::server, ec);
      if (ec) continue;  // e.g. a client that refused our certificate
      boost::beast::flat_buffer buf;
      while (true) {
        http::request<http::string_body> req;
        http::read(tls, buf, req, ec);
        if (ec) break;
        ++requests_;
        http::response<http::string_body> res{http::status::ok, 11};
        res.body() = "secure " + std::string(req.target());
        res.keep_alive(true);
        res.prepare_payload();
        http::write(tls, res, ec);
        if (ec) break;
      }
    }
  }

  boost::asio::io_context io_;
  boost::asio::ssl::context ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST(HttpGetClientTest, HttpsReusesTheTlsSession) {
  TlsTestServer server;
  boost::asio::io_context io;
  HttpGetClient::Options o;
  o.tls = true;  // insecure_skip_verify defaults to true: the self-signed certificate is fine
  HttpGetClient client(io, "127.0.0.1", server.port(), "/metrics", o);
  for (int i = 0; i < 3; ++i) {
    auto r = GetOnce(io, client);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "secure /metrics");
  }
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpGetClientTest, HttpsVerificationRejectsAnUntrustedCertificate) {
  TlsTestServer server;
  boost::asio::io_context io;
  HttpGetClient::Options o;
  o.tls = true;
  o.insecure_skip_verify = false;
  HttpGetClient client(io, "127.0.0.1", server.port(), "/metrics", o);
  auto r = GetOnce(io, client);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("TLS handshake"), std::string::npos) << r.status();
  EXPECT_EQ(server.requests(), 0);
}

TEST(HttpGetClientTest, HttpsToAPlainServerFails) {
  HttpTestServer server([](const std::string&) {
    return HttpTestServer::Reply{HttpTestServer::Action::kRespond, 200, "plain"};
  });
  boost::asio::io_context io;
  HttpGetClient::Options o;
  o.tls = true;
  o.timeout = std::chrono::milliseconds(500);
  HttpGetClient client(io, "127.0.0.1", server.port(), "/metrics", o);
  auto r = GetOnce(io, client);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == absl::StatusCode::kUnavailable ||
              r.status().code() == absl::StatusCode::kDeadlineExceeded)
      << r.status();
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
