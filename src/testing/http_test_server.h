// Test helper: a small HTTP/1.1 server on 127.0.0.1:0 (Boost.Beast, a thread per connection)
// whose answer to each GET a test decides, including misbehaviour: hang, stream forever,
// close the connection, any status.
#ifndef EPP_TESTING_HTTP_TEST_SERVER_H_
#define EPP_TESTING_HTTP_TEST_SERVER_H_

#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

namespace epp::testing {

class HttpTestServer {
 public:
  enum class Action { kRespond, kHang, kStreamForever, kClose };
  struct Reply {
    Action action = Action::kRespond;
    int status = 200;
    std::string body;
    bool keep_alive = true;
  };
  using Handler = std::function<Reply(const std::string& target)>;

  explicit HttpTestServer(Handler handler)
      : handler_(std::move(handler)),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~HttpTestServer() {
    stopping_ = true;
    // shutdown(2) wakes threads blocked in accept/read on these sockets; close alone does not.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& s : sockets_) ::shutdown(s.native_handle(), SHUT_RDWR);
    }
    accept_thread_.join();
    for (auto& t : conn_threads_) t.join();
  }

  uint16_t port() const { return port_; }
  int requests() const { return requests_.load(); }
  int connections() const { return connections_.load(); }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      ++connections_;
      std::lock_guard<std::mutex> lock(mu_);
      sockets_.push_back(std::move(socket));
      auto* s = &sockets_.back();
      conn_threads_.emplace_back([this, s] { Serve(*s); });
    }
  }

  void Serve(boost::asio::ip::tcp::socket& socket) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    while (!stopping_) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(socket, buffer, req, ec);
      if (ec) return;
      ++requests_;
      Reply r = handler_(std::string(req.target()));
      if (r.action == Action::kClose) {
        socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        return;
      }
      if (r.action == Action::kHang) {
        while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return;
      }
      if (r.action == Action::kStreamForever) {
        std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
        boost::asio::write(socket, boost::asio::buffer(head), ec);
        std::string chunk = "1000\r\n" + std::string(4096, '#') + "\r\n";
        while (!stopping_ && !ec) boost::asio::write(socket, boost::asio::buffer(chunk), ec);
        return;
      }
      http::response<http::string_body> res{static_cast<http::status>(r.status), 11};
      res.set(http::field::content_type, "text/plain; version=0.0.4");
      res.keep_alive(r.keep_alive);
      res.body() = r.body;
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec || !r.keep_alive) return;
    }
  }

  Handler handler_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::list<boost::asio::ip::tcp::socket> sockets_;
  std::thread accept_thread_;
  std::list<std::thread> conn_threads_;
};

}  // namespace epp::testing

#endif  // EPP_TESTING_HTTP_TEST_SERVER_H_
