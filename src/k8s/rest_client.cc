#include "k8s/rest_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <optional>

#include "common/strings.h"

namespace epp::k8s {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {
constexpr size_t kErrorBodyLimit = 1u << 20;

bool IsIpLiteral(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}
}  // namespace

// All I/O runs on `io`, driven by the calling thread inside Await(); Cancel() posts a close.
struct RestClient::Impl {
  explicit Impl(std::shared_ptr<const RestConfig> c) : config(std::move(c)) {}

  absl::Status Init() {
    if (config->scheme != "https") return absl::OkStatus();
    tls_ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    error_code ec;
    if (config->insecure_skip_verify) {
      tls_ctx->set_verify_mode(ssl::verify_none);
    } else {
      if (config->ca_pem.empty()) {
        tls_ctx->set_default_verify_paths(ec);
      } else {
        tls_ctx->add_certificate_authority(asio::buffer(config->ca_pem), ec);
      }
      if (ec) {
        return absl::InvalidArgumentError(
            StrCat("API server CA (certificate-authority / ca.crt): not a usable PEM certificate: ",
                   ec.message()));
      }
      tls_ctx->set_verify_mode(ssl::verify_peer);
    }
    if (!config->client_cert_pem.empty()) {
      tls_ctx->use_certificate_chain(asio::buffer(config->client_cert_pem), ec);
      if (ec) {
        return absl::InvalidArgumentError(
            StrCat("client-certificate: not a usable PEM certificate chain: ", ec.message()));
      }
      // An encrypted key must fail here, not make OpenSSL prompt on the terminal.
      tls_ctx->set_password_callback(
          [](std::size_t, ssl::context::password_purpose) { return std::string(); });
      tls_ctx->use_private_key(asio::buffer(config->client_key_pem), ssl::context::pem, ec);
      if (ec) {
        return absl::InvalidArgumentError(
            StrCat("client-key: not a usable unencrypted PEM private key: ", ec.message()));
      }
      if (SSL_CTX_check_private_key(tls_ctx->native_handle()) != 1) {
        return absl::InvalidArgumentError("client-key: does not match client-certificate");
      }
    }
    return absl::OkStatus();
  }

  // Runs the operation `start` begins until its handler ran. The handler gets the error code.
  template <typename Start>
  error_code Await(Start start) {
    // A Cancel() that landed between two operations (its posted cancel found nothing pending)
    // must still stop the next one.
    if (cancelled->load(std::memory_order_acquire)) return asio::error::operation_aborted;
    std::optional<error_code> result;
    start([&result](error_code ec, auto&&...) { result = ec; });
    io.restart();
    while (!result) {
      if (io.run_one() == 0) return asio::error::operation_aborted;
    }
    return *result;
  }

  template <typename F>
  decltype(auto) WithStream(F f) {
    if (tls) return f(*tls);
    return f(*tcp);
  }

  absl::Status Connect(std::chrono::steady_clock::time_point deadline) {
    Close();
    tcp.emplace(io);
    // Name resolution runs under the same deadline (a stuck DNS server must not stall a Lease
    // renewal or Stop()); Cancel() cancels it too.
    resolver.emplace(io);
    tcp::resolver::results_type endpoints;
    std::string port = std::to_string(config->port);
    asio::steady_timer resolve_timer(io, deadline);
    bool timed_out = false;
    resolve_timer.async_wait([this, &timed_out](error_code e) {
      if (e) return;  // cancelled: the lookup finished first
      timed_out = true;
      if (resolver) resolver->cancel();
    });
    error_code ec = Await([&](auto handler) {
      resolver->async_resolve(config->host, port,
                              [&endpoints, handler](error_code e, tcp::resolver::results_type r) {
                                endpoints = std::move(r);
                                handler(e);
                              });
    });
    resolve_timer.cancel();
    // Let the timer's handler run now, while `timed_out` is alive.
    io.restart();
    io.poll();
    resolver.reset();
    if (ec) return Failed("resolve", timed_out ? beast::error::timeout : ec);
    tcp->expires_at(deadline);
    ec = Await([&](auto handler) { tcp->async_connect(endpoints, handler); });
    if (ec) return Failed("connect", ec);
    // Keepalive probes find a half-open watch connection (a vanished API server node) within
    // about a minute, instead of the watch's idle limit.
    SetKeepalive(tcp->socket());
    if (!tls_ctx) return absl::OkStatus();
    tls.emplace(*tcp, *tls_ctx);
    const std::string& name =
        config->tls_server_name.empty() ? config->host : config->tls_server_name;
    if (!IsIpLiteral(name)) SSL_set_tlsext_host_name(tls->native_handle(), name.c_str());
    if (!config->insecure_skip_verify) tls->set_verify_callback(ssl::host_name_verification(name));
    tcp->expires_at(deadline);
    ec = Await([&](auto handler) { tls->async_handshake(ssl::stream_base::client, handler); });
    if (ec) return Failed("TLS handshake", ec);
    return absl::OkStatus();
  }

  static void SetKeepalive(tcp::socket& socket) {
    int fd = socket.native_handle();
    int on = 1, idle = 30, interval = 10, count = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  }

  void Close() {
    tls.reset();
    if (tcp) {
      error_code ignored;
      tcp->socket().shutdown(tcp::socket::shutdown_both, ignored);
      tcp->close();
    }
    tcp.reset();
  }

  absl::Status Failed(std::string_view what, error_code ec) {
    if (cancelled->load(std::memory_order_acquire)) return absl::CancelledError("cancelled");
    if (ec == beast::error::timeout) {
      return absl::DeadlineExceededError(
          StrCat("API server ", config->HostPort(), ": ", what, ": timed out"));
    }
    return absl::UnavailableError(
        StrCat("API server ", config->HostPort(), ": ", what, ": ", ec.message()));
  }

  http::request<http::string_body> MakeRequest(http::verb verb, std::string_view target,
                                               std::string_view body,
                                               std::string_view content_type) {
    http::request<http::string_body> req{verb, std::string(target), 11};
    req.set(http::field::host, config->HostPort());
    req.set(http::field::user_agent, "epp");
    req.set(http::field::accept, "application/json");
    std::string token = config->token ? config->token->Token() : std::string();
    if (!token.empty()) req.set(http::field::authorization, StrCat("Bearer ", token));
    if (!body.empty() || verb == http::verb::post || verb == http::verb::put ||
        verb == http::verb::patch) {
      req.set(http::field::content_type, std::string(content_type));
      req.body() = std::string(body);
    }
    req.prepare_payload();
    return req;
  }

  std::shared_ptr<const RestConfig> config;
  std::atomic<bool>* cancelled = nullptr;
  asio::io_context io;
  std::unique_ptr<ssl::context> tls_ctx;
  std::optional<beast::tcp_stream> tcp;
  std::optional<tcp::resolver> resolver;  // during a lookup
  std::optional<ssl::stream<beast::tcp_stream&>> tls;
  absl::Status init_status;
};

RestClient::RestClient(std::shared_ptr<const RestConfig> config)
    : impl_(std::make_unique<Impl>(std::move(config))) {
  impl_->cancelled = &cancelled_;
  impl_->init_status = impl_->Init();
}

RestClient::~RestClient() { impl_->Close(); }

absl::Status RestClient::status() const { return impl_->init_status; }

void RestClient::Cancel() {
  cancelled_.store(true, std::memory_order_release);
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] {
    if (impl->resolver) impl->resolver->cancel();
    if (impl->tcp) impl->tcp->cancel();
  });
}

absl::StatusOr<RestResponse> RestClient::Do(std::string_view method, std::string_view target,
                                            std::string_view body, std::string_view content_type,
                                            std::chrono::milliseconds timeout, size_t body_limit) {
  if (cancelled()) return absl::CancelledError("cancelled");
  if (!impl_->init_status.ok()) return impl_->init_status;
  http::verb verb = http::string_to_verb(beast::string_view(method.data(), method.size()));
  if (verb == http::verb::unknown) {
    return absl::InvalidArgumentError(StrCat("unknown HTTP method ", method));
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (absl::Status s = impl_->Connect(deadline); !s.ok()) return s;
  auto req = impl_->MakeRequest(verb, target, body, content_type);
  impl_->tcp->expires_at(deadline);
  error_code ec = impl_->WithStream([&](auto& stream) {
    return impl_->Await([&](auto h) { http::async_write(stream, req, h); });
  });
  if (ec) return impl_->Failed("write", ec);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  impl_->tcp->expires_at(deadline);
  ec = impl_->WithStream([&](auto& stream) {
    return impl_->Await([&](auto h) { http::async_read(stream, buffer, parser, h); });
  });
  impl_->Close();
  if (ec == http::error::body_limit) {
    return absl::OutOfRangeError(
        StrCat("API server response to ", target, " is over ", body_limit, " bytes"));
  }
  if (ec) return impl_->Failed(StrCat("read ", target), ec);
  RestResponse out;
  auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  if (auto it = res.find(http::field::retry_after); it != res.end()) {
    out.retry_after = std::string(it->value());
  }
  return out;
}

absl::StatusOr<RestResponse> RestClient::Stream(
    std::string_view target, std::chrono::milliseconds idle_timeout,
    const std::function<absl::Status(std::string_view)>& on_data) {
  if (cancelled()) return absl::CancelledError("cancelled");
  if (!impl_->init_status.ok()) return impl_->init_status;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  if (absl::Status s = impl_->Connect(deadline); !s.ok()) return s;
  auto req = impl_->MakeRequest(http::verb::get, target, {}, {});
  impl_->tcp->expires_at(deadline);
  error_code ec = impl_->WithStream([&](auto& stream) {
    return impl_->Await([&](auto h) { http::async_write(stream, req, h); });
  });
  if (ec) return impl_->Failed("write", ec);

  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  impl_->tcp->expires_at(deadline);
  ec = impl_->WithStream([&](auto& stream) {
    return impl_->Await([&](auto h) { http::async_read_header(stream, buffer, parser, h); });
  });
  if (ec) {
    impl_->Close();
    return impl_->Failed(StrCat("read ", target), ec);
  }
  RestResponse out;
  out.status = static_cast<int>(parser.get().result_int());
  if (auto it = parser.get().find(http::field::retry_after); it != parser.get().end()) {
    out.retry_after = std::string(it->value());
  }
  absl::Status result = absl::OkStatus();
  char chunk[16384];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof(chunk);
    impl_->tcp->expires_after(idle_timeout);
    ec = impl_->WithStream([&](auto& stream) {
      return impl_->Await([&](auto h) { http::async_read_some(stream, buffer, parser, h); });
    });
    if (ec == http::error::need_buffer) ec = {};
    size_t n = sizeof(chunk) - parser.get().body().size;
    if (n > 0) {
      std::string_view data(chunk, n);
      if (out.status == 200) {
        result = on_data(data);
        if (!result.ok()) break;
      } else if (out.body.size() < kErrorBodyLimit) {
        out.body.append(data.substr(0, kErrorBodyLimit - out.body.size()));
      }
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == ssl::error::stream_truncated) {
      // The server closed the stream (a watch ending without a clean last chunk).
      if (cancelled()) result = absl::CancelledError("cancelled");
      break;
    }
    if (ec) {
      result = impl_->Failed(StrCat("read ", target), ec);
      break;
    }
  }
  impl_->Close();
  if (!result.ok()) return result;
  if (cancelled()) return absl::CancelledError("cancelled");
  return out;
}

}  // namespace epp::k8s
