#include "extproc/server.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "scheduling/plugins/pickers.h"
#include "scheduling/plugins/single_profile_handler.h"
#include "testing/scheduler_from_yaml.h"
#include "testing/wait.h"

namespace epp::extproc {
namespace {

using ProcessingMode = ::envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
using HealthResponse = ::grpc::health::v1::HealthCheckResponse;

constexpr char kChatBody[] =
    R"({"model":"llama","messages":[{"role":"user","content":"hello"}],"stream":false})";
const std::set<std::string> kPool = {"10.0.0.1:8000", "10.0.0.2:8000"};

using ::epp::testing::WaitFor;

pb::ProcessingRequest Headers(ProcessingMode::BodySendMode mode, const std::string& request_id) {
  pb::ProcessingRequest msg;
  auto* h = msg.mutable_request_headers()->mutable_headers();
  for (const auto& [k, v] :
       std::vector<std::pair<std::string, std::string>>{{":method", "POST"},
                                                        {":path", "/v1/chat/completions"},
                                                        {"content-type", "application/json"},
                                                        {"x-request-id", request_id}}) {
    auto* hv = h->add_headers();
    hv->set_key(k);
    hv->set_raw_value(v);
  }
  msg.mutable_protocol_config()->set_request_body_mode(mode);
  msg.mutable_protocol_config()->set_response_body_mode(mode);
  return msg;
}

pb::ProcessingRequest Body(const std::string& chunk, bool eos) {
  pb::ProcessingRequest msg;
  msg.mutable_request_body()->set_body(chunk);
  msg.mutable_request_body()->set_end_of_stream(eos);
  return msg;
}

std::string DestinationHeader(const pb::CommonResponse& common) {
  for (const auto& o : common.header_mutation().set_headers()) {
    if (o.header().key() == "x-gateway-destination-endpoint") return o.header().raw_value();
  }
  return "";
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto built = ::epp::testing::SchedulerFromYaml(
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n"
        "plugins:\n- type: random-picker\n");
    ASSERT_TRUE(built.ok()) << built.status();
    plugins_ = std::move(built->plugins);
    scheduler_ = std::move(built->scheduler);
    ds_.SetPoolReady(true);
    ds_.ReplaceAll({datastore::MakeEndpoint("a", "ns", "10.0.0.1", 8000),
                    datastore::MakeEndpoint("b", "ns", "10.0.0.2", 8000)});
    director_ = std::make_unique<requestcontrol::Director>(ds_, *scheduler_);
    service_ = std::make_unique<ExternalProcessorService>(*director_, StreamOptions{});
    health_ = std::make_unique<HealthService>([] { return true; }, [] { return true; },
                                              /*leader_election=*/false);

    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    builder.RegisterService(health_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    stub_ = pb::ExternalProcessor::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  // Plays Envoy's FULL_DUPLEX_STREAMED request sequence; returns "" on success, else what broke.
  std::string FullDuplexExchange(const std::string& request_id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto stream = stub_->Process(&ctx);
    const std::string body = kChatBody;
    const std::string first = body.substr(0, 25), second = body.substr(25);
    if (!stream->Write(Headers(ProcessingMode::FULL_DUPLEX_STREAMED, request_id)))
      return "write headers";
    if (!stream->Write(Body(first, false))) return "write body 1";
    if (!stream->Write(Body(second, false))) return "write body 2";
    if (!stream->Write(Body("", true))) return "write eos";

    pb::ProcessingResponse r;
    if (!stream->Read(&r)) return "read headers answer";
    if (!r.has_request_headers()) return "first answer is not request_headers";
    std::string dest = DestinationHeader(r.request_headers().response());
    if (kPool.count(dest) == 0) return "bad destination \"" + dest + "\"";
    if (!r.request_headers().response().clear_route_cache()) return "no clear_route_cache";
    std::string echoed;
    bool eos = false;
    while (!eos) {
      if (!stream->Read(&r)) return "read body chunk";
      if (!r.has_request_body()) return "answer is not request_body";
      const auto& s = r.request_body().response().body_mutation().streamed_response();
      echoed += s.body();
      eos = s.end_of_stream();
    }
    if (echoed != body) return "echoed body differs";
    stream->WritesDone();
    if (stream->Read(&r)) return "unexpected extra answer";
    grpc::Status status = stream->Finish();
    if (!status.ok()) return "finish: " + status.error_message();
    return "";
  }

  datastore::Datastore ds_;
  std::unique_ptr<config::PluginSet> plugins_;
  std::unique_ptr<scheduling::Scheduler> scheduler_;
  std::unique_ptr<requestcontrol::Director> director_;
  std::unique_ptr<ExternalProcessorService> service_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::ExternalProcessor::Stub> stub_;
};

TEST_F(ServerTest, FullDuplexSequence) {
  EXPECT_EQ(FullDuplexExchange("rid-1"), "");
  EXPECT_TRUE(WaitFor([&] { return service_->active_streams() == 0; }));
}

TEST_F(ServerTest, BufferedSequence) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub_->Process(&ctx);
  ASSERT_TRUE(stream->Write(Headers(ProcessingMode::BUFFERED, "rid-b")));
  pb::ProcessingResponse r;
  ASSERT_TRUE(stream->Read(&r));
  ASSERT_TRUE(r.has_request_headers());
  EXPECT_FALSE(r.request_headers().has_response());

  ASSERT_TRUE(stream->Write(Body(kChatBody, true)));
  ASSERT_TRUE(stream->Read(&r));
  ASSERT_TRUE(r.has_request_body());
  const auto& common = r.request_body().response();
  EXPECT_TRUE(common.clear_route_cache());
  EXPECT_EQ(kPool.count(DestinationHeader(common)), 1u) << DestinationHeader(common);
  EXPECT_EQ(r.dynamic_metadata()
                .fields()
                .at("envoy.lb")
                .struct_value()
                .fields()
                .at("x-gateway-destination-endpoint")
                .string_value(),
            DestinationHeader(common));

  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&r));
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(ServerTest, MalformedSequenceEndsWithInvalidArgumentAndServerKeepsServing) {
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto stream = stub_->Process(&ctx);
    stream->Write(Body(kChatBody, true));  // body before headers
    pb::ProcessingResponse r;
    EXPECT_FALSE(stream->Read(&r));
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  }
  EXPECT_EQ(FullDuplexExchange("after-bad"), "");
  EXPECT_TRUE(WaitFor([&] { return service_->active_streams() == 0; }));
}

TEST_F(ServerTest, ClientCancelMidStreamLeavesServerServing) {
  {
    grpc::ClientContext ctx;
    auto stream = stub_->Process(&ctx);
    ASSERT_TRUE(stream->Write(Headers(ProcessingMode::FULL_DUPLEX_STREAMED, "rid-c")));
    ASSERT_TRUE(stream->Write(Body("{\"model\":", false)));
    // Wait until the server has the stream open, then cancel mid-body.
    EXPECT_TRUE(WaitFor([&] { return service_->active_streams() == 1; }));
    ctx.TryCancel();
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(WaitFor([&] { return service_->active_streams() == 0; }))
      << service_->active_streams();
  EXPECT_EQ(FullDuplexExchange("after-cancel"), "");
}

TEST_F(ServerTest, ConcurrentStreams) {
  constexpr int kStreams = 50;
  std::vector<std::string> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back(
        [this, i, &results] { results[i] = FullDuplexExchange("rid-" + std::to_string(i)); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) EXPECT_EQ(results[i], "") << "stream " << i;
  EXPECT_TRUE(WaitFor([&] { return service_->active_streams() == 0; }));
}

TEST_F(ServerTest, HealthCheckRpc) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const char* service : {"", "liveness", "readiness", "anything"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    HealthResponse resp;
    grpc::Status status = health->Check(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.status(), HealthResponse::SERVING) << service;
  }
}

TEST(HealthServiceTest, WithoutLeaderElection) {
  for (bool live : {true, false}) {
    for (bool leader : {true, false}) {
      HealthService h([live] { return live; }, [leader] { return leader; },
                      /*leader_election=*/false);
      for (const char* name :
           {"", "liveness", "readiness", "envoy.service.ext_proc.v3.ExternalProcessor", "other"}) {
        EXPECT_EQ(h.StatusFor(name), live ? HealthResponse::SERVING : HealthResponse::NOT_SERVING)
            << "live=" << live << " leader=" << leader << " name=" << name;
      }
    }
  }
}

TEST(HealthServiceTest, WithLeaderElection) {
  for (bool live : {true, false}) {
    for (bool leader : {true, false}) {
      HealthService h([live] { return live; }, [leader] { return leader; },
                      /*leader_election=*/true);
      const auto ready = live && leader ? HealthResponse::SERVING : HealthResponse::NOT_SERVING;
      std::string where = "live=" + std::to_string(live) + " leader=" + std::to_string(leader);
      EXPECT_EQ(h.StatusFor("liveness"), HealthResponse::SERVING) << where;
      EXPECT_EQ(h.StatusFor("readiness"), ready) << where;
      EXPECT_EQ(h.StatusFor(""), ready) << where;
      EXPECT_EQ(h.StatusFor("envoy.service.ext_proc.v3.ExternalProcessor"), ready) << where;
      EXPECT_EQ(h.StatusFor("other"), HealthResponse::SERVICE_UNKNOWN) << where;
    }
  }
}

}  // namespace
}  // namespace epp::extproc
