#include "net/accept_loop.h"

#include <boost/asio/steady_timer.hpp>

#include "common/logging.h"

namespace epp::net {
namespace {

using tcp = boost::asio::ip::tcp;

struct Loop : std::enable_shared_from_this<Loop> {
  Loop(tcp::acceptor& a, std::function<void(tcp::socket)> f, std::string w,
       std::chrono::milliseconds p)
      : acceptor(a),
        on_socket(std::move(f)),
        what(std::move(w)),
        pause(p),
        timer(a.get_executor()),
        stats(std::make_shared<AcceptStats>()) {}

  void Accept() {
    acceptor.async_accept(
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
          self->OnAccept(ec, std::move(socket));
        });
  }

  void OnAccept(boost::system::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      stats->failed.fetch_add(1);
      if (streak++ == 0) {
        EPP_LOG_WARN("{}: accept failed: {}; retrying every {} ms until it works", what,
                     ec.message(), pause.count());
      }
      timer.expires_after(pause);
      timer.async_wait([self = shared_from_this()](boost::system::error_code tec) {
        if (!tec) self->Accept();
      });
      return;
    }
    if (streak > 0) {
      EPP_LOG_INFO("{}: accepting again after {} failed accepts", what, streak);
      streak = 0;
    }
    stats->accepted.fetch_add(1);
    on_socket(std::move(socket));
    Accept();
  }

  tcp::acceptor& acceptor;
  std::function<void(tcp::socket)> on_socket;
  std::string what;
  std::chrono::milliseconds pause;
  boost::asio::steady_timer timer;
  uint64_t streak = 0;  // failures since the last accepted connection
  std::shared_ptr<AcceptStats> stats;
};

}  // namespace

std::shared_ptr<const AcceptStats> AcceptLoop(tcp::acceptor& acceptor,
                                              std::function<void(tcp::socket)> on_socket,
                                              std::string what, std::chrono::milliseconds pause) {
  auto loop = std::make_shared<Loop>(acceptor, std::move(on_socket), std::move(what), pause);
  loop->Accept();
  return loop->stats;
}

}  // namespace epp::net
