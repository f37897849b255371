// HttpGetClient: repeated GETs of one URL over one keep-alive HTTP/1.1 connection (plain or
// TLS), on an Asio io_context. Made for polling (the data layer scrapes /metrics every 50 ms):
// the connection (and TLS session) is opened on first use, reused while the server keeps it
// alive, and reopened after any error.
//
// Thread-safety: all calls and callbacks run on the io_context's thread (one Get at a time).
// Errors: Unavailable (connect/handshake/read/write failures, a certificate that fails
// verification, connection closed), DeadlineExceeded (the
// whole GET took longer than the timeout), OutOfRange (body over the limit), Internal (HTTP
// status other than 200, with the status in the message).
#ifndef EPP_NET_HTTP_CLIENT_H_
#define EPP_NET_HTTP_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"

namespace epp::net {

class HttpGetClient {
 public:
  struct Options {
    std::chrono::milliseconds timeout{1000};
    size_t body_limit = 16u << 20;
    bool tls = false;  // https
    // With tls: accept any server certificate (the reference's default for scraping pods, whose
    // certificates are usually self-signed); false verifies the chain against the system's CAs
    // and the certificate against the address.
    bool insecure_skip_verify = true;
  };
  using Callback = std::function<void(absl::StatusOr<std::string> body)>;

  // `host` is a numeric IPv4/IPv6 address.
  HttpGetClient(boost::asio::io_context& io, std::string host, uint16_t port, std::string target,
                Options options);
  ~HttpGetClient();
  HttpGetClient(const HttpGetClient&) = delete;
  HttpGetClient& operator=(const HttpGetClient&) = delete;

  // Starts one GET; `done` runs on the io_context exactly once (also when Close() interrupts
  // it). Must not be called while a GET is in flight.
  void Get(Callback done);
  bool busy() const;

  // Closes the connection; an in-flight GET completes with Unavailable.
  void Close();

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with in-flight operations
};

}  // namespace epp::net

#endif  // EPP_NET_HTTP_CLIENT_H_
