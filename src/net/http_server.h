// HttpServer: a small HTTP/1.1 server on its own Asio thread for operator endpoints (the admin
// port): keep-alive, one request at a time per connection, bodies of requests ignored, answers
// produced by a handler. Not for the data path.
//
// Thread-safety: the handler runs on the server's thread; Start/Stop from one thread.
#ifndef EPP_NET_HTTP_SERVER_H_
#define EPP_NET_HTTP_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"

namespace epp::net {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  // `handler(method, target)`; the target includes any query string.
  using Handler = std::function<HttpResponse(const std::string& method, const std::string& target)>;

  HttpServer(std::string bind_address, uint16_t port, Handler handler);
  ~HttpServer();

  // Binds and starts serving; returns the bound port (useful with port 0). Errors name the
  // address.
  absl::StatusOr<uint16_t> Start();
  void Stop();  // idempotent

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace epp::net

#endif  // EPP_NET_HTTP_SERVER_H_
