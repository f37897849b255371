// In-process tests of modelsim's HTTP face: a real server on 127.0.0.1:0, a blocking Beast
// client. The engine runs 100× faster than real time so generations take milliseconds.
#include "sim/server/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "common/strings.h"
#include "testing/wait.h"

namespace epp::sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

struct Reply {
  int status = 0;
  std::string content_type;
  std::string body;
};

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerConfig c) {
    c.host = "127.0.0.1";
    c.port = 0;
    ASSERT_TRUE(ValidateServerConfig(c).ok()) << ValidateServerConfig(c).message();
    server_ = std::make_unique<ModelServer>(std::move(c));
    auto port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }
  static ServerConfig Config() {
    ServerConfig c;
    c.model = "base-model";
    c.time_scale = 100;
    c.engine.max_model_len = 4096;
    return c;
  }

  tcp::socket Connect() {
    tcp::socket s(io_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
    return s;
  }

  Reply Call(http::verb method, std::string_view target, std::string body = "") {
    tcp::socket s = Connect();
    http::request<http::string_body> req{method, std::string(target), 11};
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(s, buf, parser);
    res = parser.release();
    return Reply{static_cast<int>(res.result_int()), std::string(res[http::field::content_type]),
                 res.body()};
  }
  // Writes a POST /v1/completions by hand and returns the socket, for reading raw bytes.
  tcp::socket SendRaw(std::string_view body) {
    tcp::socket s = Connect();
    std::string req = StrCat(
        "POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: "
        "application/json\r\ncontent-length: ",
        body.size(), "\r\n\r\n", body);
    asio::write(s, asio::buffer(req));
    return s;
  }
  Reply Post(std::string_view target, std::string body) {
    return Call(http::verb::post, target, std::move(body));
  }
  Reply Get(std::string_view target) { return Call(http::verb::get, target); }

  // The value of the first sample line starting with `prefix` on /metrics.
  double Metric(std::string_view prefix) {
    std::string page = Get("/metrics").body;
    for (std::string_view line : Split(page, '\n')) {
      if (line.starts_with(prefix)) return std::stod(std::string(line.substr(line.rfind(' ') + 1)));
    }
    return -1;
  }

  asio::io_context io_;
  std::unique_ptr<ModelServer> server_;
  uint16_t port_ = 0;
};

// The data: payloads of an SSE body, in order.
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> out;
  for (std::string_view block : Split(body, '\n')) {
    if (block.starts_with("data: ")) out.emplace_back(block.substr(6));
  }
  return out;
}

TEST_F(ServerTest, CompletionReturnsUsageAndLengthFinish) {
  StartServer(Config());
  Reply r =
      Post("/v1/completions",
           R"({"model":"base-model","prompt":"abcdefghijkl","max_tokens":5,"ignore_eos":true})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_THAT(r.body, StartsWith("{\"id\":\"cmpl-"));
  EXPECT_THAT(r.body, HasSubstr("\"object\":\"text_completion\""));
  EXPECT_THAT(r.body, HasSubstr("\"finish_reason\":\"length\""));
  EXPECT_THAT(r.body, HasSubstr("\"usage\":{\"prompt_tokens\":3,\"total_tokens\":8,"
                                "\"completion_tokens\":5}"));
}

TEST_F(ServerTest, ChatStreamIsFramedAsVllmFramesIt) {
  StartServer(Config());
  Reply r = Post("/v1/chat/completions",
                 R"({"model":"base-model","messages":[{"role":"user","content":"hi"}],
                     "max_tokens":3,"ignore_eos":true,"stream":true,
                     "stream_options":{"include_usage":true}})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/event-stream; charset=utf-8");
  auto ev = Events(r.body);
  ASSERT_EQ(ev.size(), 6u) << r.body;  // role, 3 tokens, usage, [DONE]
  EXPECT_THAT(ev[0], HasSubstr("\"delta\":{\"role\":\"assistant\",\"content\":\"\"}"));
  EXPECT_THAT(ev[1], HasSubstr("\"finish_reason\":null"));
  EXPECT_THAT(ev[1], Not(HasSubstr("usage")));
  EXPECT_THAT(ev[3], HasSubstr("\"finish_reason\":\"length\""));
  EXPECT_THAT(ev[4], HasSubstr("\"choices\":[],\"usage\":{\"prompt_tokens\":"));
  EXPECT_THAT(ev[4], HasSubstr("\"completion_tokens\":3}"));
  EXPECT_EQ(ev[5], "[DONE]");
  // Events are separated by blank lines.
  EXPECT_THAT(r.body, HasSubstr("}\n\ndata: "));
}

TEST_F(ServerTest, RequestsWithoutIgnoreEosStopOnTheirOwn) {
  ServerConfig c = Config();
  c.output_len_mean = 4;
  StartServer(c);
  Reply r = Post("/v1/completions", R"({"prompt":"some prompt text","max_tokens":1000})");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr("\"finish_reason\":\"stop\""));
  // The same prompt stops at the same length.
  Reply again = Post("/v1/completions", R"({"prompt":"some prompt text","max_tokens":1000})");
  auto tokens = [](const std::string& body) {
    return body.substr(body.find("\"completion_tokens\""));
  };
  EXPECT_EQ(tokens(r.body), tokens(again.body));
}

TEST_F(ServerTest, ErrorsHaveVllmsShapeAndStatus) {
  StartServer(Config());
  Reply unknown = Post("/v1/completions", R"({"model":"nope","prompt":"x"})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body,
            R"({"error":{"message":"The model `nope` does not exist.","type":"NotFoundError",)"
            R"("param":null,"code":404}})");
  Reply bad = Post("/v1/completions", "{oops");
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("\"type\":\"BadRequestError\""));
  Reply too_long = Post("/v1/completions", R"({"prompt":"abcd","max_tokens":5000})");
  EXPECT_EQ(too_long.status, 400);
  EXPECT_THAT(too_long.body, HasSubstr("maximum context length is 4096 tokens"));
  EXPECT_EQ(Get("/v1/completions").status, 405);
  EXPECT_EQ(Get("/no/such/path").status, 404);
  // The server keeps serving after all of these.
  EXPECT_EQ(Get("/health").status, 200);
}

TEST_F(ServerTest, OversizedBodyIs413) {
  ServerConfig c = Config();
  c.max_request_body_bytes = 1024;
  StartServer(c);
  Reply r = Post("/v1/completions", StrCat(R"({"prompt":")", std::string(2000, 'a'), "\"}"));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(Get("/health").status, 200);
}

TEST_F(ServerTest, LoraAdaptersAppearInModelsAndServeRequests) {
  ServerConfig c = Config();
  c.engine.enable_lora = true;
  c.engine.max_loras = 2;
  c.lora_modules = {{"sql-lora", "/adapters/sql"}};
  StartServer(c);
  std::string models = Get("/v1/models").body;
  EXPECT_THAT(models, HasSubstr("\"id\":\"base-model\""));
  EXPECT_THAT(models, HasSubstr("\"id\":\"sql-lora\",\"object\":\"model\""));
  EXPECT_THAT(models, HasSubstr("\"root\":\"/adapters/sql\",\"parent\":\"base-model\""));

  Reply load = Post("/v1/load_lora_adapter", R"({"lora_name":"tweet","lora_path":"/a/t"})");
  EXPECT_EQ(load.status, 200);
  EXPECT_EQ(load.body, "Success: LoRA adapter 'tweet' added successfully.");
  EXPECT_THAT(Get("/v1/models").body, HasSubstr("\"id\":\"tweet\""));
  Reply again = Post("/v1/load_lora_adapter", R"({"lora_name":"tweet","lora_path":"/a/t"})");
  EXPECT_EQ(again.status, 400);
  EXPECT_THAT(again.body, HasSubstr("has already been loaded"));

  Reply gen = Post("/v1/completions", R"({"model":"tweet","prompt":"abcd","max_tokens":2})");
  EXPECT_EQ(gen.status, 200);
  EXPECT_THAT(gen.body, HasSubstr("\"model\":\"tweet\""));

  EXPECT_EQ(Post("/v1/unload_lora_adapter", R"({"lora_name":"tweet"})").status, 200);
  EXPECT_THAT(Get("/v1/models").body, Not(HasSubstr("\"id\":\"tweet\"")));
  Reply gone = Post("/v1/unload_lora_adapter", R"({"lora_name":"tweet"})");
  EXPECT_EQ(gone.status, 404);
  EXPECT_THAT(gone.body, HasSubstr("The lora adapter 'tweet' cannot be found."));
  EXPECT_EQ(Post("/v1/completions", R"({"model":"tweet","prompt":"abcd"})").status, 404);
}

TEST_F(ServerTest, LoraEndpointsRefusedWithoutEnableLora) {
  StartServer(Config());
  Reply r = Post("/v1/load_lora_adapter", R"({"lora_name":"a","lora_path":"/a"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("--enable-lora"));
}

TEST_F(ServerTest, TokenizeCountsFourBytesPerToken) {
  StartServer(Config());
  Reply r = Post("/tokenize", R"({"model":"base-model","prompt":"abcdefghi"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, StartsWith("{\"count\":3,\"max_model_len\":4096,\"tokens\":["));
}

TEST_F(ServerTest, MetricsReflectServedRequests) {
  StartServer(Config());
  // A scrape before the request: the page rendered now must not be served again afterwards.
  EXPECT_DOUBLE_EQ(Metric("vllm:generation_tokens_total{"), 0.0);
  ASSERT_EQ(
      Post("/v1/completions", R"({"prompt":"abcdefgh","max_tokens":4,"ignore_eos":true})").status,
      200);
  Reply m = Get("/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(m.body,
              HasSubstr("vllm:num_requests_running{engine=\"0\",model_name=\"base-model\"}"));
  EXPECT_DOUBLE_EQ(Metric("vllm:generation_tokens_total{"), 4.0);
  EXPECT_DOUBLE_EQ(Metric("vllm:prompt_tokens_total{"), 2.0);
  EXPECT_DOUBLE_EQ(Metric("vllm:request_success_total{engine=\"0\",finished_reason=\"length\""),
                   1.0);
  EXPECT_EQ(Get("/prometheus/metrics").status, 200);
}

TEST_F(ServerTest, ClientThatLeavesAbortsItsRequest) {
  ServerConfig c = Config();
  c.time_scale = 1;  // slow enough that the request is still running when the client leaves
  StartServer(c);
  {
    tcp::socket s =
        SendRaw(R"({"prompt":"abcd","max_tokens":2000,"ignore_eos":true,"stream":true})");
    char buf[256];
    s.read_some(asio::buffer(buf));  // the response has started
  }                                  // closed
  EXPECT_TRUE(testing::WaitFor([&] {
    return Metric("vllm:request_success_total{engine=\"0\",finished_reason=\"abort\"") == 1.0;
  }));
  EXPECT_EQ(Metric("vllm:num_requests_running{"), 0.0);
}

TEST_F(ServerTest, InjectedErrorsAndRuntimeFaultChanges) {
  ServerConfig c = Config();
  c.faults.error_rate = 1;
  c.faults.error_status = 503;
  StartServer(c);
  Reply r = Post("/v1/completions", R"({"prompt":"abcd"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("\"type\":\"ServiceUnavailableError\""));
  Reply set = Post("/sim/faults", R"({"error_rate":0,"metrics_garbage":true})");
  EXPECT_EQ(set.status, 200);
  EXPECT_THAT(set.body, HasSubstr("\"error_rate\":0,"));
  EXPECT_EQ(Post("/v1/completions", R"({"prompt":"abcd"})").status, 200);
  Reply garbage = Get("/metrics");
  EXPECT_EQ(garbage.status, 200);
  EXPECT_THAT(garbage.body, Not(HasSubstr("vllm:")));
  EXPECT_EQ(Post("/sim/faults", R"({"error_rate":7})").status, 400);
  EXPECT_THAT(Get("/sim/faults").body, HasSubstr("\"metrics_garbage\":true"));
}

TEST_F(ServerTest, DropFaultClosesTheStreamAfterTheFirstToken) {
  ServerConfig c = Config();
  c.faults.drop_rate = 1;
  StartServer(c);
  tcp::socket s = SendRaw(R"({"prompt":"abcd","max_tokens":50,"ignore_eos":true,"stream":true})");
  std::string got;
  beast::error_code ec;
  char buf[4096];
  while (!ec) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    got.append(buf, n);
  }
  EXPECT_THAT(got, HasSubstr("200 OK"));
  EXPECT_THAT(got, Not(HasSubstr("[DONE]")));
  EXPECT_EQ(Events(got).size(), 1u) << got;
}

TEST_F(ServerTest, HangFaultNeverAnswers) {
  ServerConfig c = Config();
  c.faults.hang_rate = 1;
  StartServer(c);
  tcp::socket s = SendRaw(R"({"prompt":"abcd"})");
  // Nothing arrives while other requests are still served.
  EXPECT_EQ(Get("/health").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(s.available(), 0u);
}

TEST_F(ServerTest, MetricsDelayFault) {
  ServerConfig c = Config();
  c.faults.metrics_delay_ms = 300;
  StartServer(c);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Get("/metrics").status, 200);
  // A lower bound only: the answer cannot come before the injected delay.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer(Config());
  tcp::socket s = Connect();
  beast::flat_buffer buf;
  for (int i = 0; i < 3; ++i) {
    http::request<http::string_body> req{http::verb::post, "/v1/completions", 11};
    req.set(http::field::host, "x");
    req.body() = R"({"prompt":"abcd","max_tokens":2,"stream":true})";
    req.prepare_payload();
    http::write(s, req);
    http::response<http::string_body> res;
    http::read(s, buf, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(Events(res.body()).back(), "[DONE]");
  }
}

TEST_F(ServerTest, HeadAnswersHaveNoBody) {
  StartServer(Config());
  tcp::socket s = Connect();
  std::string req =
      "HEAD /v1/models HTTP/1.1\r\nhost: x\r\n\r\nGET /health HTTP/1.1\r\nhost: x\r\n\r\n";
  asio::write(s, asio::buffer(req));
  // Both answers arrive and the second one parses: the HEAD answer carried no body.
  beast::flat_buffer buf;
  http::response_parser<http::empty_body> head;
  head.skip(true);  // a response to HEAD: no body to read
  http::read(s, buf, head);
  EXPECT_EQ(head.get().result_int(), 200u);
  EXPECT_NE(head.get()[http::field::content_length], "0");
  http::response<http::string_body> health;
  http::read(s, buf, health);
  EXPECT_EQ(health.result_int(), 200u);
}

TEST_F(ServerTest, BytesSentDuringAGenerationDoNotLoseIt) {
  ServerConfig c = Config();
  c.time_scale = 1;  // the generation is still running when the next bytes arrive
  StartServer(c);
  tcp::socket s = SendRaw(R"({"prompt":"abcd","max_tokens":20,"ignore_eos":true})");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::string next = "GET /health HTTP/1.1\r\nhost: x\r\n\r\n";  // pipelined
  asio::write(s, asio::buffer(next));
  beast::flat_buffer buf;
  http::response<http::string_body> first;
  http::read(s, buf, first);
  EXPECT_EQ(first.result_int(), 200u);
  EXPECT_THAT(first.body(), HasSubstr("\"completion_tokens\":20"));
  http::response<http::string_body> second;
  http::read(s, buf, second);
  EXPECT_EQ(second.result_int(), 200u);
}

}  // namespace
}  // namespace epp::sim
