#include "loadgen/client.h"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <map>
#include <optional>
#include <unordered_set>

#include "common/strings.h"

namespace epp::loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct StreamingClient::Core {
  Core(asio::io_context& io, Options options) : io(io), options(std::move(options)) {}

  asio::io_context& io;
  const Options options;
  bool shut_down = false;
  int64_t opened = 0;
  int in_flight = 0;
  std::map<tcp::endpoint, std::vector<std::shared_ptr<Connection>>> idle;  // the pools
  std::unordered_set<Connection*> live;  // every connection object (idle or busy)
};

struct StreamingClient::Connection : std::enable_shared_from_this<StreamingClient::Connection> {
  Connection(std::shared_ptr<Core> c, tcp::endpoint ep)
      : core(std::move(c)), endpoint(ep), stream(core->io) {
    core->live.insert(this);
  }
  ~Connection() { core->live.erase(this); }

  std::shared_ptr<Core> core;
  tcp::endpoint endpoint;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool connected = false;
  int served = 0;  // exchanges completed on this connection

  // The exchange in progress.
  http::request<http::string_body> request;
  std::optional<http::response_parser<http::buffer_body>> parser;
  std::array<char, 16 * 1024> chunk;
  std::optional<ResponseMeter> meter;
  Clock::time_point due;
  Callback done;
  bool reused = false;   // started on a connection that had served an exchange
  bool retried = false;  // already sent a second time

  double Now() const { return std::chrono::duration<double>(Clock::now() - due).count(); }

  void Begin() {
    meter.emplace();
    reused = served > 0;
    retried = false;
    stream.expires_after(core->options.timeout);  // one deadline for the whole exchange
    if (connected) return Write();
    Connect();
  }

  void Connect() {
    ++core->opened;
    stream.async_connect(endpoint, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Fail(ErrorKind::kConnect, "connect", ec);
      self->connected = true;
      beast::error_code ignored;
      self->stream.socket().set_option(tcp::no_delay(true), ignored);
      self->Write();
    });
  }

  void Write() {
    http::async_write(stream, request, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail(ErrorKind::kTransport, "write", ec);
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    parser.emplace();
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());  // streams are long
    http::async_read_header(
        stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->Fail(ErrorKind::kTransport, "read", ec);
          auto& res = self->parser->get();
          auto content_type = res[http::field::content_type];
          self->meter->OnHeaders(static_cast<int>(res.result_int()),
                                 std::string_view(content_type.data(), content_type.size()));
          self->ReadBody();
        });
  }

  void ReadBody() {
    if (parser->is_done()) return Complete();
    auto& body = parser->get().body();
    body.data = chunk.data();
    body.size = chunk.size();
    http::async_read_some(
        stream, buffer, *parser, [self = shared_from_this()](beast::error_code ec, size_t) {
          size_t got = self->chunk.size() - self->parser->get().body().size;
          if (got > 0) self->meter->OnBody(std::string_view(self->chunk.data(), got), self->Now());
          if (ec == http::error::need_buffer) ec = {};  // the chunk buffer is full: go on
          if (ec == http::error::end_of_stream && self->parser->is_done()) ec = {};
          if (ec) return self->Fail(ErrorKind::kTransport, "read", ec);
          self->ReadBody();
        });
  }

  void Complete() {
    bool reusable = parser->get().keep_alive();
    meter->OnComplete(Now());
    Finish(reusable);
  }

  // A server that closed an idle keep-alive connection shows as one of these on its reuse.
  static bool StaleConnection(const beast::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
  }

  void Fail(ErrorKind kind, std::string_view what, const beast::error_code& ec) {
    std::string message = StrCat(what, ": ", ec.message());
    if (core->shut_down) {
      kind = ErrorKind::kCancelled;
      message = "cancelled: the run was stopped";
    } else if (ec == beast::error::timeout) {
      kind = ErrorKind::kTimeout;
      message = StrCat(what, ": timed out after ", core->options.timeout.count(), " ms");
    } else if (kind == ErrorKind::kTransport && reused && !retried && !meter->headers_seen() &&
               StaleConnection(ec)) {
      retried = true;
      Close();
      buffer.clear();
      return Connect();  // the deadline set in Begin still holds
    }
    meter->OnFailure(kind, message, Now());
    Finish(/*reusable=*/false);
  }

  void Finish(bool reusable) {
    RequestResult result = meter->Take();
    meter.reset();
    parser.reset();
    request = {};  // a long prompt's body is not kept
    Callback cb = std::move(done);
    done = nullptr;
    --core->in_flight;
    if (reusable && !core->shut_down) {
      ++served;
      stream.expires_never();
      core->idle[endpoint].push_back(shared_from_this());
    } else {
      Close();
      buffer.clear();
    }
    cb(std::move(result));
  }

  void Close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
    connected = false;
  }
};

StreamingClient::StreamingClient(asio::io_context& io, Options options)
    : core_(std::make_shared<Core>(io, std::move(options))) {}

StreamingClient::~StreamingClient() { Shutdown(); }

void StreamingClient::Post(const Target& target, std::string path, std::string body,
                           Clock::time_point due, Callback done) {
  Core& core = *core_;
  if (core.shut_down) {
    asio::post(core.io, [done = std::move(done), due] {
      ResponseMeter meter;
      meter.OnFailure(ErrorKind::kCancelled, "cancelled: the run was stopped",
                      std::chrono::duration<double>(Clock::now() - due).count());
      done(meter.Take());
    });
    return;
  }
  std::shared_ptr<Connection> c;
  auto& idle = core.idle[target.endpoint];
  while (!c && !idle.empty()) {
    c = std::move(idle.back());
    idle.pop_back();
    if (!c->stream.socket().is_open()) c.reset();
  }
  if (!c) c = std::make_shared<Connection>(core_, target.endpoint);

  http::request<http::string_body> req{http::verb::post, path, 11};
  for (const auto& [name, value] : core.options.headers) req.insert(name, value);
  auto set_default = [&req](http::field f, std::string_view value) {
    if (req.find(f) == req.end()) req.set(f, beast::string_view(value.data(), value.size()));
  };
  set_default(http::field::host, target.host_header);
  set_default(http::field::user_agent, "epp-loadgen");
  set_default(http::field::content_type, "application/json");
  set_default(http::field::accept, "text/event-stream");
  req.body() = std::move(body);
  req.keep_alive(true);
  req.prepare_payload();
  c->request = std::move(req);
  c->due = due;
  c->done = std::move(done);
  ++core.in_flight;
  c->Begin();
}

void StreamingClient::Shutdown() {
  core_->shut_down = true;
  core_->idle.clear();  // idle connections go now
  std::vector<Connection*> busy(core_->live.begin(), core_->live.end());
  // Their pending operations complete with operation_aborted, and finish as kCancelled.
  for (Connection* c : busy) c->Close();
}

int64_t StreamingClient::connections_opened() const { return core_->opened; }

int StreamingClient::in_flight() const { return core_->in_flight; }

}  // namespace epp::loadgen
