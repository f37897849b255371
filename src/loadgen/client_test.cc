// StreamingClient against a scripted server on 127.0.0.1:0 that answers with raw bytes: split
// SSE, keep-alive and its loss, garbage, silence, and a closed port.
#include "loadgen/client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <mutex>
#include <thread>

#include "common/strings.h"

namespace epp::loadgen {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;

// Serves connections one at a time on its own thread. For each request (headers and a
// content-length body) it calls the script, which writes the answer on the socket and says
// whether to keep the connection.
class ScriptedServer {
 public:
  using Script = std::function<bool(tcp::socket&, const std::string& request)>;

  explicit ScriptedServer(Script script)
      : script_(std::move(script)), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Loop(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    boost::system::error_code ignored;
    // Wake the accept (or a blocked read) with a connection of our own.
    tcp::socket poke(io_);
    poke.connect({asio::ip::make_address("127.0.0.1"), port_}, ignored);
    poke.close(ignored);
    thread_.join();
  }

  uint16_t port() const { return port_; }
  int connections() const { return connections_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Loop() {
    while (!stopping_) {
      tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stopping_) return;
      ++connections_;
      std::string buf;
      while (!stopping_) {
        size_t end = asio::read_until(s, asio::dynamic_buffer(buf), "\r\n\r\n", ec);
        if (ec) break;
        size_t length = 0;
        size_t at = buf.find("content-length: ");
        if (at == std::string::npos) at = buf.find("Content-Length: ");
        if (at != std::string::npos && at < end) length = std::stoul(buf.substr(at + 16));
        while (buf.size() < end + length && !ec) {
          char tmp[4096];
          size_t n = s.read_some(asio::buffer(tmp), ec);
          buf.append(tmp, n);
        }
        if (ec) break;
        std::string request = buf.substr(0, end + length);
        buf.erase(0, end + length);
        {
          std::lock_guard<std::mutex> lock(mu_);
          requests_.push_back(request);
        }
        if (!script_(s, request)) break;
      }
      s.close(ec);
    }
  }

  Script script_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<std::string> requests_;
};

void Write(tcp::socket& s, std::string_view bytes) {
  boost::system::error_code ignored;
  asio::write(s, asio::buffer(bytes.data(), bytes.size()), ignored);
}

std::string Chunk(std::string_view data) {
  char size[16];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return StrCat(size, data, "\r\n");
}

std::string TextEvent(std::string_view t) {
  return StrCat("data: {\"choices\":[{\"index\":0,\"text\":\"", t, "\"}]}\n\n");
}

constexpr std::string_view kStreamHead =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    "transfer-encoding: chunked\r\n\r\n";

// Writes a 3-token stream with the usage chunk, its events split across HTTP chunks and
// written with pauses so the client sees them in separate reads.
bool ThreeTokens(tcp::socket& s, const std::string&) {
  std::string events = TextEvent(" a") + TextEvent(" b") + TextEvent(" c") +
                       "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,"
                       "\"completion_tokens\":3}}\n\ndata: [DONE]\n\n";
  Write(s, kStreamHead);
  for (size_t i = 0; i < events.size(); i += 37) {
    Write(s, Chunk(std::string_view(events).substr(i, 37)));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  Write(s, "0\r\n\r\n");
  return true;
}

class ClientTest : public ::testing::Test {
 protected:
  StreamingClient::Target TargetOf(uint16_t port) {
    return {tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), StrCat("127.0.0.1:", port)};
  }
  // Sends `n` requests one after another (each when the previous finished) and runs the loop.
  std::vector<RequestResult> Sequential(StreamingClient& client, uint16_t port, int n) {
    std::vector<RequestResult> out;
    std::function<void()> next = [&] {
      client.Post(TargetOf(port), "/v1/completions", "{\"x\":1}", StreamingClient::Clock::now(),
                  [&](RequestResult r) {
                    out.push_back(std::move(r));
                    if (static_cast<int>(out.size()) < n) next();
                  });
    };
    next();
    io_.run();
    io_.restart();
    return out;
  }

  asio::io_context io_;
};

TEST_F(ClientTest, MeasuresAStreamAndReusesTheConnection) {
  ScriptedServer server(ThreeTokens);
  StreamingClient::Options options;
  options.headers = {{"x-gateway-inference-objective", "premium"}, {"user-agent", "custom"}};
  StreamingClient client(io_, options);
  auto results = Sequential(client, server.port(), 3);
  ASSERT_EQ(results.size(), 3u);
  for (const RequestResult& r : results) {
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.output_tokens, 3);
    EXPECT_EQ(r.content_chunks, 3);
    EXPECT_EQ(r.prompt_tokens, 4);
    EXPECT_GT(r.ttft_s, 0);
    EXPECT_EQ(r.itl_s.size(), 2u);
    EXPECT_LE(r.ttft_s, r.e2e_s);
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(client.connections_opened(), 1);
  std::string request = server.requests().at(0);
  EXPECT_THAT(request, HasSubstr("POST /v1/completions HTTP/1.1\r\n"));
  EXPECT_THAT(request, HasSubstr(StrCat("Host: 127.0.0.1:", server.port())));
  EXPECT_THAT(request, HasSubstr("x-gateway-inference-objective: premium\r\n"));
  EXPECT_THAT(request, HasSubstr("user-agent: custom\r\n"));  // ours is not added as well
  EXPECT_THAT(request, ::testing::Not(HasSubstr("epp-loadgen")));
  EXPECT_THAT(request, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_THAT(request, HasSubstr("\r\n\r\n{\"x\":1}"));
}

TEST_F(ClientTest, AServerThatClosedAnIdleConnectionCostsARetryNotAnError) {
  // Answers once per connection, claiming keep-alive, then closes.
  ScriptedServer server([](tcp::socket& s, const std::string& r) {
    ThreeTokens(s, r);
    return false;
  });
  StreamingClient client(io_, {});
  auto results = Sequential(client, server.port(), 3);
  ASSERT_EQ(results.size(), 3u);
  for (const RequestResult& r : results) EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(server.connections(), 3);
  EXPECT_EQ(client.connections_opened(), 3);
}

TEST_F(ClientTest, AnErrorStatusKeepsTheConnection) {
  ScriptedServer server([](tcp::socket& s, const std::string&) {
    std::string body = R"({"error":{"message":"overloaded","type":"x","param":null,"code":429}})";
    Write(s, StrCat("HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
                    "content-length: ",
                    body.size(), "\r\n\r\n", body));
    return true;
  });
  StreamingClient client(io_, {});
  auto results = Sequential(client, server.port(), 2);
  for (const RequestResult& r : results) {
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.error_kind, ErrorKind::kHttpStatus);
    EXPECT_EQ(r.error, "HTTP 429: overloaded");
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(ClientTest, AStreamCutShortIsATransportErrorWithStatusZero) {
  ScriptedServer server([](tcp::socket& s, const std::string&) {
    Write(s, kStreamHead);
    Write(s, Chunk(TextEvent("a")));
    return false;  // closes mid-stream
  });
  StreamingClient client(io_, {});
  auto results = Sequential(client, server.port(), 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].status, 0);
  EXPECT_EQ(results[0].error_kind, ErrorKind::kTransport);
  EXPECT_EQ(results[0].output_tokens, 1);
  EXPECT_THAT(results[0].error, HasSubstr("after HTTP 200"));
}

TEST_F(ClientTest, GarbageInsteadOfHttpIsATransportError) {
  ScriptedServer server([](tcp::socket& s, const std::string&) {
    Write(s, std::string("\x00\xff garbage \r\n\r\n\x01", 17));
    return false;
  });
  StreamingClient client(io_, {});
  auto results = Sequential(client, server.port(), 1);
  EXPECT_EQ(results.at(0).status, 0);
  EXPECT_EQ(results.at(0).error_kind, ErrorKind::kTransport);
  for (char c : results.at(0).error) EXPECT_TRUE(c >= 0x20 && c < 0x7f);
}

TEST_F(ClientTest, ABodyEndedByCloseAndAWholeJsonAnswerAreRead) {
  ScriptedServer server([](tcp::socket& s, const std::string&) {
    Write(s,
          "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
          "{\"choices\":[{\"text\":\"hi\"}],\"usage\":{\"completion_tokens\":2}}");
    return false;
  });
  StreamingClient client(io_, {});
  auto results = Sequential(client, server.port(), 1);
  EXPECT_TRUE(results.at(0).ok()) << results.at(0).error;
  EXPECT_EQ(results.at(0).output_tokens, 2);
}

TEST_F(ClientTest, AClosedPortIsAConnectError) {
  uint16_t port;
  {
    tcp::acceptor a(io_, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  StreamingClient client(io_, {});
  auto results = Sequential(client, port, 1);
  EXPECT_EQ(results.at(0).status, 0);
  EXPECT_EQ(results.at(0).error_kind, ErrorKind::kConnect);
}

TEST_F(ClientTest, ASilentServerTimesOut) {
  ScriptedServer server([](tcp::socket& s, const std::string&) {
    char b;
    boost::system::error_code ec;
    s.read_some(asio::buffer(&b, 1), ec);  // until the client gives up
    return false;
  });
  StreamingClient::Options options;
  options.timeout = std::chrono::milliseconds(100);
  StreamingClient client(io_, options);
  auto results = Sequential(client, server.port(), 1);
  EXPECT_EQ(results.at(0).status, 0);
  EXPECT_EQ(results.at(0).error_kind, ErrorKind::kTimeout);
}

TEST_F(ClientTest, ShutdownCancelsRequestsInFlightAndLaterOnes) {
  ScriptedServer server([](tcp::socket& s, const std::string&) {
    Write(s, kStreamHead);
    char b;
    boost::system::error_code ec;
    s.read_some(asio::buffer(&b, 1), ec);
    return false;
  });
  StreamingClient client(io_, {});
  std::vector<RequestResult> results;
  client.Post(TargetOf(server.port()), "/v1/completions", "{}", StreamingClient::Clock::now(),
              [&](RequestResult r) {
                results.push_back(std::move(r));
                client.Post(TargetOf(server.port()), "/v1/completions", "{}",
                            StreamingClient::Clock::now(),
                            [&](RequestResult r2) { results.push_back(std::move(r2)); });
              });
  EXPECT_EQ(client.in_flight(), 1);
  // Shut down once the answer has begun.
  asio::steady_timer poll(io_);
  std::function<void()> wait = [&] {
    poll.expires_after(std::chrono::milliseconds(5));
    poll.async_wait([&](auto) {
      if (server.requests().empty()) return wait();
      client.Shutdown();
    });
  };
  wait();
  io_.run();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].error_kind, ErrorKind::kCancelled);
  EXPECT_EQ(results[1].error_kind, ErrorKind::kCancelled);
  EXPECT_EQ(client.in_flight(), 0);
}

}  // namespace
}  // namespace epp::loadgen
