// StreamingClient: sends OpenAI requests (POST, JSON body) and reads their streamed answers, on
// one Asio io_context, over keep-alive HTTP/1.1 connections (plain TCP): one pool per host:port,
// one request per connection at a time. A request takes an idle connection of its target or
// opens a new one; there is no cap, so an open loop never waits for the client.
//
// Each request has one deadline for everything (connect, write, the whole answer): `timeout`
// from when it is sent. A request on a reused connection that fails before any byte of the
// answer (the server had closed the idle connection) is sent once more on a new connection.
// Body bytes go to a ResponseMeter as they arrive, stamped with the steady clock relative to
// the request's due time, so a request sent late (the loop was busy) shows the delay.
//
// Thread-safety: every call, and every callback, on the io_context's thread.
// Errors: every outcome is a RequestResult (see meter.h); nothing throws.
#ifndef EPP_LOADGEN_CLIENT_H_
#define EPP_LOADGEN_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "loadgen/meter.h"

namespace epp::loadgen {

class StreamingClient {
 public:
  struct Options {
    std::chrono::milliseconds timeout{std::chrono::minutes(5)};
    // Sent with every request after host, user-agent, content-type, accept and content-length.
    std::vector<std::pair<std::string, std::string>> headers;
  };
  struct Target {
    boost::asio::ip::tcp::endpoint endpoint;
    std::string host_header;  // host[:port] as the Host header carries it
  };
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void(RequestResult)>;

  StreamingClient(boost::asio::io_context& io, Options options);
  // Shuts down; callbacks of requests still in flight run (kCancelled) when the io_context
  // runs them.
  ~StreamingClient();
  StreamingClient(const StreamingClient&) = delete;
  StreamingClient& operator=(const StreamingClient&) = delete;

  // Sends `body` to `path` on `target`. Result times count from `due`. `done` runs exactly
  // once, on the io_context, never inside Post.
  void Post(const Target& target, std::string path, std::string body, Clock::time_point due,
            Callback done);

  // Closes every connection: requests in flight finish with kCancelled, and so does any later
  // Post. Idempotent.
  void Shutdown();

  int64_t connections_opened() const;
  int in_flight() const;

  struct Core;        // shared with the connections' pending operations
  struct Connection;  // one keep-alive HTTP/1.1 connection

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace epp::loadgen

#endif  // EPP_LOADGEN_CLIENT_H_
