#include "net/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "common/logging.h"
#include "common/strings.h"
#include "net/accept_loop.h"

namespace epp::net {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

// Limits for operator requests: small headers, a short idle timeout.
constexpr std::chrono::seconds kIdleTimeout{30};
constexpr size_t kHeaderLimit = 16 * 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer::Handler& handler)
      : stream_(std::move(socket)), handler_(handler) {}

  void Read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(64 * 1024);
    stream_.expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Close();
                       self->Respond();
                     });
  }

 private:
  void Respond() {
    const auto& req = parser_->get();
    HttpResponse r;
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      r.status = 405;
      r.body = "method not allowed\n";
    } else {
      r = handler_(std::string(req.method_string()), std::string(req.target()));
    }
    res_ = {};
    res_.version(req.version());
    res_.result(static_cast<http::status>(r.status));
    res_.set(http::field::content_type, r.content_type);
    res_.keep_alive(req.keep_alive());
    res_.body() = std::move(r.body);
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_.keep_alive()) return self->Close();
      self->Read();
    });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  const HttpServer::Handler& handler_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
};

}  // namespace

struct HttpServer::Impl {
  Impl(std::string bind, uint16_t port, Handler handler)
      : bind_address(std::move(bind)), port(port), handler(std::move(handler)), acceptor(io) {}

  void Accept() {
    const Handler& h = handler;
    AcceptLoop(
        acceptor,
        [&h](tcp::socket socket) { std::make_shared<Session>(std::move(socket), h)->Read(); },
        "admin server");
  }

  std::string bind_address;
  uint16_t port;
  Handler handler;
  boost::asio::io_context io;
  tcp::acceptor acceptor;
  std::thread thread;
};

HttpServer::HttpServer(std::string bind_address, uint16_t port, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(bind_address), port, std::move(handler))) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<uint16_t> HttpServer::Start() {
  beast::error_code ec;
  auto address = boost::asio::ip::make_address(impl_->bind_address, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        StrCat("admin server: \"", impl_->bind_address, "\" is not an IP address"));
  }
  tcp::endpoint ep(address, impl_->port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(StrCat("admin server: cannot listen on ", impl_->bind_address,
                                         ":", impl_->port, ": ", ec.message()));
  }
  uint16_t bound = impl_->acceptor.local_endpoint().port();
  impl_->Accept();
  impl_->thread = std::thread([this] { impl_->io.run(); });
  return bound;
}

void HttpServer::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace epp::net
