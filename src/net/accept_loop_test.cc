#include "net/accept_loop.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <thread>

#include "gtest/gtest.h"

namespace epp::net {
namespace {

using tcp = boost::asio::ip::tcp;
using std::chrono::milliseconds;

// An accept on a socket that is bound but not listening fails at once with EINVAL, every time:
// the same shape as running out of file descriptors (EMFILE), which a test cannot cause without
// starving the whole process.
TEST(AcceptLoopTest, PausesAfterFailuresInsteadOfSpinningAndRecovers) {
  boost::asio::io_context io;
  tcp::acceptor acceptor(io);
  acceptor.open(tcp::v4());
  acceptor.bind(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t port = acceptor.local_endpoint().port();

  std::atomic<int> sockets{0};
  auto stats = AcceptLoop(
      acceptor, [&sockets](tcp::socket) { sockets.fetch_add(1); }, "test server", milliseconds(20));
  std::thread loop([&io] { io.run_for(std::chrono::seconds(5)); });

  const auto t0 = std::chrono::steady_clock::now();
  while (stats->failed.load() < 3) std::this_thread::sleep_for(milliseconds(5));
  std::this_thread::sleep_for(milliseconds(200));
  const uint64_t failed = stats->failed.load();
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  // At most one failure per 20 ms pause (plus the first and one in flight), however long this
  // thread was descheduled; a loop that re-armed at once fails thousands of times meanwhile.
  EXPECT_LE(failed, static_cast<uint64_t>(elapsed / milliseconds(20)) + 2)
      << "in " << std::chrono::duration_cast<milliseconds>(elapsed).count() << " ms";
  EXPECT_EQ(stats->accepted.load(), 0u);

  // The cause goes away: the next retry accepts.
  boost::asio::post(io, [&acceptor] { acceptor.listen(); });
  boost::asio::io_context client_io;
  tcp::socket client(client_io);
  boost::system::error_code ec;
  for (int i = 0; i < 100; ++i) {
    client.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) break;
    client.close();
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_FALSE(ec) << ec.message();
  for (int i = 0; i < 200 && sockets.load() == 0; ++i) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_EQ(sockets.load(), 1);
  EXPECT_EQ(stats->accepted.load(), 1u);

  io.stop();
  loop.join();
}

TEST(AcceptLoopTest, ClosingTheAcceptorEndsTheLoop) {
  boost::asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  auto stats = AcceptLoop(
      acceptor, [](tcp::socket) {}, "test server", milliseconds(20));
  boost::asio::post(io, [&acceptor] { acceptor.close(); });
  // run() returns only when no handler is pending: the loop did not re-arm after the close.
  io.run_for(std::chrono::seconds(5));
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(stats->failed.load(), 0u);
}

TEST(AcceptLoopTest, ClosingTheAcceptorDuringAPauseEndsTheLoop) {
  boost::asio::io_context io;
  tcp::acceptor acceptor(io);
  acceptor.open(tcp::v4());
  acceptor.bind(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));  // not listening
  auto stats = AcceptLoop(
      acceptor, [](tcp::socket) {}, "test server", milliseconds(50));
  io.run_one();  // the first accept fails; its pause starts
  ASSERT_EQ(stats->failed.load(), 1u);
  acceptor.close();
  // The pause ends, the next accept sees a closed acceptor, nothing is re-armed.
  io.run_for(std::chrono::seconds(5));
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(stats->failed.load(), 1u);
}

}  // namespace
}  // namespace epp::net
