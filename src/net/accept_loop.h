// Keeps a listening Asio acceptor accepting, and survives running out of file descriptors.
//
// An accept that fails for a reason other than cancellation (EMFILE, ENFILE, ENOBUFS, ...)
// fails again at once while the cause lasts, so re-arming the accept straight away spins a core
// and, with a log line per failure, floods the log. AcceptLoop instead waits `pause` after a
// failure, logs the first failure of a streak and the recovery once, and counts the failures.
//
// Thread-safety: everything runs on the acceptor's executor (one io_context thread); the
// returned stats may be read from any thread. Lifetime: the state is owned by the pending
// handlers. The loop ends when the acceptor is closed (on its executor) — at once, or when a
// pending pause ends; stopping the io_context only suspends it. The acceptor must outlive the
// loop's handlers: destroy it only after its io_context has stopped running, as a server that
// stops its io_context and then destroys its members does.
#ifndef EPP_NET_ACCEPT_LOOP_H_
#define EPP_NET_ACCEPT_LOOP_H_

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace epp::net {

struct AcceptStats {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> failed{0};  // failed accepts (each followed by a pause)
};

// Starts accepting on `acceptor` (open and listening): every connection goes to on_socket.
// `what` names the server in log lines ("admin server", "modelsim").
std::shared_ptr<const AcceptStats> AcceptLoop(
    boost::asio::ip::tcp::acceptor& acceptor,
    std::function<void(boost::asio::ip::tcp::socket)> on_socket, std::string what,
    std::chrono::milliseconds pause = std::chrono::milliseconds(100));

}  // namespace epp::net

#endif  // EPP_NET_ACCEPT_LOOP_H_
