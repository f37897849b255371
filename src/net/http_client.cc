#include "net/http_client.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "common/host_port.h"
#include "common/strings.h"

namespace epp::net {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;
namespace ssl = boost::asio::ssl;

struct HttpGetClient::State : std::enable_shared_from_this<HttpGetClient::State> {
  State(boost::asio::io_context& io, std::string host, uint16_t port, std::string target,
        Options options)
      : stream(io),
        host_header(JoinHostPort(host, port)),
        target(std::move(target)),
        options(options) {
    // Beast reads into the free space of this buffer; with the default few hundred bytes a
    // 16 KB metrics page took ~25 recvmsg calls. Room for a typical page makes it one or two.
    buffer.reserve(64 * 1024);
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(host, ec);
    if (ec) {
      bad_address = absl::InvalidArgumentError(StrCat("\"", host, "\" is not an IP address"));
    } else {
      endpoint = tcp::endpoint(address, port);
    }
    if (options.tls) {
      tls_context = std::make_unique<ssl::context>(ssl::context::tls_client);
      if (options.insecure_skip_verify) {
        tls_context->set_verify_mode(ssl::verify_none);
      } else {
        tls_context->set_default_verify_paths(ec);
        tls_context->set_verify_mode(ssl::verify_peer);
        tls_context->set_verify_callback(ssl::host_name_verification(host));
      }
    }
  }

  // A fresh TLS session over the (re)connected socket.
  void ResetTls() {
    if (tls_context) tls.emplace(stream, *tls_context);
  }

  template <typename Op>
  void WithStream(Op op) {
    if (tls) {
      op(*tls);
    } else {
      op(stream);
    }
  }

  beast::tcp_stream stream;
  std::unique_ptr<ssl::context> tls_context;           // with Options::tls
  std::optional<ssl::stream<beast::tcp_stream&>> tls;  // the current TLS session
  tcp::endpoint endpoint;
  std::optional<absl::Status> bad_address;
  std::string host_header;
  std::string target;
  Options options;
  bool connected = false;
  bool busy = false;
  Callback done;
  http::request<http::empty_body> request;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;

  // `connection_ok`: the exchange completed cleanly (an HTTP error status is still a complete
  // response), so a kept-alive connection can serve the next GET.
  void Finish(absl::StatusOr<std::string> result, bool connection_ok = false) {
    if (!result.ok() && !connection_ok) {
      // A transport failure leaves the connection in an unknown state: start over next time.
      beast::error_code ignored;
      stream.socket().close(ignored);
      connected = false;
      buffer.clear();
    }
    busy = false;
    Callback cb = std::move(done);
    done = nullptr;
    if (cb) cb(std::move(result));
  }

  absl::Status Error(std::string_view what, const beast::error_code& ec) {
    if (ec == beast::error::timeout) {
      return absl::DeadlineExceededError(StrCat(
          what, " ", host_header, target, ": timed out after ", options.timeout.count(), " ms"));
    }
    if (ec == http::error::body_limit) {
      return absl::OutOfRangeError(StrCat(what, " ", host_header, target, ": body larger than ",
                                          options.body_limit, " bytes"));
    }
    return absl::UnavailableError(StrCat(what, " ", host_header, target, ": ", ec.message()));
  }

  void Start() {
    if (bad_address) {
      // Answer asynchronously, like every other outcome.
      boost::asio::post(stream.get_executor(),
                        [self = shared_from_this()] { self->Finish(*self->bad_address); });
      return;
    }
    request = {};
    request.method(http::verb::get);
    request.target(target);
    request.version(11);
    request.set(http::field::host, host_header);
    request.set(http::field::user_agent, "epp");
    request.set(http::field::accept, "text/plain");
    request.keep_alive(true);
    parser.emplace();
    parser->body_limit(options.body_limit);
    stream.expires_after(options.timeout);  // one deadline for the whole GET
    if (connected) {
      Write();
      return;
    }
    stream.async_connect(endpoint, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Finish(self->Error("connect", ec));
      if (!self->tls_context) {
        self->connected = true;
        return self->Write();
      }
      self->ResetTls();
      self->tls->async_handshake(ssl::stream_base::client, [self](beast::error_code ec) {
        if (ec) return self->Finish(self->Error("TLS handshake with", ec));
        self->connected = true;
        self->Write();
      });
    });
  }

  void Write() {
    WithStream([this](auto& s) {
      http::async_write(s, request, [self = shared_from_this()](beast::error_code ec, size_t) {
        if (ec) return self->Finish(self->Error("write", ec));
        self->Read();
      });
    });
  }

  void Read() {
    WithStream([this](auto& s) { ReadFrom(s); });
  }

  template <typename Stream>
  void ReadFrom(Stream& s) {
    http::async_read(s, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Finish(self->Error("read", ec));
      auto& res = self->parser->get();
      if (!res.keep_alive()) {
        beast::error_code ignored;
        self->stream.socket().close(ignored);
        self->connected = false;
        self->buffer.clear();
      }
      if (res.result() != http::status::ok) {
        return self->Finish(absl::InternalError(StrCat("GET ", self->host_header, self->target,
                                                       ": HTTP ", res.result_int())),
                            /*connection_ok=*/true);
      }
      self->Finish(std::move(res.body()));
    });
  }
};

HttpGetClient::HttpGetClient(boost::asio::io_context& io, std::string host, uint16_t port,
                             std::string target, Options options)
    : state_(std::make_shared<State>(io, std::move(host), port, std::move(target), options)) {}

HttpGetClient::~HttpGetClient() { Close(); }

void HttpGetClient::Get(Callback done) {
  state_->busy = true;
  state_->done = std::move(done);
  state_->Start();
}

bool HttpGetClient::busy() const { return state_->busy; }

void HttpGetClient::Close() {
  beast::error_code ignored;
  state_->stream.socket().close(ignored);
  state_->connected = false;
}

}  // namespace epp::net
