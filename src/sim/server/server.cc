#include "sim/server/server.h"

#include <sys/socket.h>
#include <xxhash.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <ctime>
#include <optional>
#include <random>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "common/logging.h"
#include "common/strings.h"
#include "net/accept_loop.h"

namespace epp::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

absl::Status ValidateServerConfig(const ServerConfig& c) {
  if (c.model.empty()) return absl::InvalidArgumentError("--model: must not be empty");
  if (!(c.time_scale > 0)) return absl::InvalidArgumentError("--time-scale: must be positive");
  if (c.output_len_mean < 1) {
    return absl::InvalidArgumentError("--sim-output-len-mean: must be at least 1");
  }
  for (const auto& [name, path] : c.lora_modules) {
    if (name.empty() || path.empty()) {
      return absl::InvalidArgumentError("--lora-modules: each entry must be name=path");
    }
  }
  if (!c.lora_modules.empty() && !c.engine.enable_lora) {
    return absl::InvalidArgumentError("--lora-modules: requires --enable-lora");
  }
  if (auto st = ValidateEngineConfig(c.engine); !st.ok()) {
    return absl::InvalidArgumentError(StrCat("engine: ", SV(st.message())));
  }
  return absl::OkStatus();
}

namespace {

class Session;

// One generation request between Submit and its last byte.
struct Generation {
  std::weak_ptr<Session> session;
  api::ResponseMeta meta;
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage = false;
  bool drop_after_first = false;
  int prompt_tokens = 0;
  uint64_t text_seed = 0;
  std::string text;  // non-streaming answers accumulate here
};

std::string HttpDate() {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf, n);
}

std::string StatusLine(int status) {
  auto reason = http::obsolete_reason(static_cast<http::status>(status));
  return StrCat("HTTP/1.1 ", status, " ", std::string_view(reason.data(), reason.size()), "\r\n");
}

}  // namespace

struct ModelServer::Impl {
  explicit Impl(ServerConfig c);

  absl::Time SimNow() const {
    return sim_epoch + absl::FromChrono(SteadyClock::now() - real_epoch) * config.time_scale;
  }
  SteadyClock::time_point RealAt(absl::Time sim) const {
    return real_epoch + absl::ToChronoNanoseconds((sim - sim_epoch) / config.time_scale);
  }
  double WallNow() const { return absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()); }

  void Kick();
  void OnTimer();
  void Deliver(const TokenEvent& e);
  void Abort(uint64_t id);

  void Route(const std::shared_ptr<Session>& s, http::verb method, std::string_view path,
             std::string& body);
  void HandleGeneration(const std::shared_ptr<Session>& s, api::Endpoint ep, std::string& body);
  void HandleMetrics(const std::shared_ptr<Session>& s);
  void HandleLora(const std::shared_ptr<Session>& s, bool load, std::string_view body);
  std::string ModelsBody() const;
  double Roll() { return std::uniform_real_distribution<double>(0, 1)(rng); }

  ServerConfig config;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  Engine engine;
  SimMetrics metrics;
  asio::steady_timer timer{io};
  uint64_t timer_seq = 0;
  SteadyClock::time_point real_epoch = SteadyClock::now();
  absl::Time sim_epoch = absl::Now();
  int64_t created = absl::ToUnixSeconds(absl::Now());
  absl::flat_hash_map<uint64_t, Generation> gens;
  // Sessions with a pending generation or hang (see Session::WatchForDisconnect); released
  // when they finish, and all at Stop.
  absl::flat_hash_map<Session*, std::shared_ptr<Session>> pinned;
  uint64_t next_id = 1;
  // Bumped on every change of engine or metrics state; /metrics re-renders only after one, so
  // an idle server answers scrapes from the cached page.
  uint64_t version = 0;
  uint64_t page_version = UINT64_MAX;
  std::string page;
  std::mt19937_64 rng;
  std::vector<std::pair<std::string, std::string>> adapters;  // loaded, in load order
  Faults faults;
};

namespace {

// An HTTP/1.1 connection: reads one request at a time, writes answers from a queue (so SSE
// chunks produced while a write is in flight are coalesced into the next write).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ModelServer::Impl* server)
      : stream_(std::move(socket)), server_(server) {}

  void Read() {
    parser_.emplace();
    parser_->header_limit(64 * 1024);
    parser_->body_limit(server_->config.max_request_body_bytes);
    stream_.expires_after(std::chrono::seconds(300));
    http::async_read(
        stream_, buf_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void SendFull(int status, std::string_view content_type, std::string_view body) {
    StrAppend(&out_, StatusLine(status), "date: ", HttpDate(), "\r\nserver: uvicorn\r\n",
              "content-length: ", body.size(), "\r\n");
    if (!content_type.empty()) StrAppend(&out_, "content-type: ", content_type, "\r\n");
    if (!keep_alive_) out_ += "connection: close\r\n";
    out_ += "\r\n";
    if (!head_) out_.append(body);  // HEAD: the headers of the GET answer, no body
    response_done_ = true;
    Flush();
  }
  void SendError(const api::Error& e) { SendFull(e.status, "application/json", api::ErrorJson(e)); }

  void BeginStream() {
    StrAppend(&out_, StatusLine(200), "date: ", HttpDate(), "\r\nserver: uvicorn\r\n",
              "content-type: text/event-stream; charset=utf-8\r\n",
              "transfer-encoding: chunked\r\n");
    if (!keep_alive_) out_ += "connection: close\r\n";
    out_ += "\r\n";
    Flush();
  }
  void StreamData(std::string_view data) {
    char hex[20];
    int n = std::snprintf(hex, sizeof(hex), "%zx\r\n", data.size());
    out_.append(hex, static_cast<size_t>(n));
    out_.append(data);
    out_ += "\r\n";
    Flush();
  }
  void EndStream() {
    out_ += "0\r\n\r\n";
    response_done_ = true;
    Flush();
  }

  // Watches the socket while a generation is pending: a client that goes away aborts it.
  // With id 0 the connection is held open unanswered (hang fault) until the client leaves.
  void WatchForDisconnect(uint64_t gen_id) {
    gen_id_ = gen_id;
    hung_ = gen_id == 0;
    // The server pins the session while the generation (or hang) is pending: generations keep
    // only a weak_ptr, and the socket watch may end before the answer does (pipelined bytes).
    server_->pinned[this] = shared_from_this();
    ArmWatch();
  }
  void ArmWatch() {
    stream_.socket().async_wait(
        tcp::socket::wait_read,
        [self = shared_from_this()](beast::error_code ec) { self->OnReadable(ec); });
  }
  void GenerationDone() {
    gen_id_ = 0;
    Unpin();  // callers hold their own reference
  }
  void Unpin() {
    auto node = server_->pinned.extract(this);  // released when this returns
  }

  // Closes the connection at once (fault injection; stalls nothing else).
  void Drop() {
    auto node = server_->pinned.extract(this);
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    closed_ = true;
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) {
      if (ec == http::error::body_limit) {
        keep_alive_ = false;
        SendError(api::Error{
            413, "BadRequestError",
            StrCat("request body exceeds ", server_->config.max_request_body_bytes, " bytes")});
      } else if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted &&
                 ec != beast::error::timeout && ec != asio::error::connection_reset &&
                 ec != asio::error::eof) {
        keep_alive_ = false;
        SendError(api::BadRequest(StrCat("malformed HTTP request: ", ec.message())));
      } else {
        Close();
      }
      return;
    }
    stream_.expires_never();
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == http::verb::head;
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    server_->Route(shared_from_this(), req.method(), path, req.body());
  }

  void OnReadable(beast::error_code ec) {
    if (ec || closed_ || (gen_id_ == 0 && !hung_)) return;
    char c;
    ssize_t n = ::recv(stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      ArmWatch();  // a spurious wake-up
      return;
    }
    if (n <= 0) {
      uint64_t id = gen_id_;
      gen_id_ = 0;
      hung_ = false;
      if (id != 0) server_->Abort(id);
      Close();
      return;
    }
    // n > 0: the client sent more (a pipelined request); it is read after this answer. A
    // client that leaves after that shows up as a failed write.
  }

  void Flush() {
    if (writing_ || out_.empty() || closed_) return;
    writing_ = true;
    wbuf_.swap(out_);
    out_.clear();
    bool done_after = response_done_;
    response_done_ = false;
    asio::async_write(stream_.socket(), asio::buffer(wbuf_),
                      [self = shared_from_this(), done_after](beast::error_code ec, size_t) {
                        self->writing_ = false;
                        self->wbuf_.clear();
                        if (ec) {
                          if (self->gen_id_ != 0) {
                            uint64_t id = self->gen_id_;
                            self->gen_id_ = 0;
                            self->server_->Abort(id);
                          }
                          self->Close();
                          return;
                        }
                        if (!self->out_.empty()) {
                          if (done_after) self->response_done_ = true;
                          self->Flush();
                          return;
                        }
                        if (done_after || self->response_done_) {
                          self->response_done_ = false;
                          if (self->keep_alive_) {
                            self->Read();
                          } else {
                            self->Close();
                          }
                        }
                      });
  }

  void Close() {
    auto node = server_->pinned.extract(this);  // released when this returns
    if (closed_) return;
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
    closed_ = true;
  }

  beast::tcp_stream stream_;
  ModelServer::Impl* server_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;
  std::string wbuf_;
  bool writing_ = false;
  bool response_done_ = false;
  bool keep_alive_ = true;
  bool closed_ = false;
  bool hung_ = false;
  bool head_ = false;
  uint64_t gen_id_ = 0;
};

}  // namespace

ModelServer::Impl::Impl(ServerConfig c)
    : config(std::move(c)),
      engine(config.engine),
      metrics(
          MetricsInfo{
              .model_name =
                  config.served_model_names.empty() ? config.model : config.served_model_names[0],
              .block_size = config.engine.block_size,
              .num_gpu_blocks = config.engine.num_gpu_blocks,
              .enable_prefix_caching = config.engine.enable_prefix_caching,
              .enable_lora = config.engine.enable_lora,
              .max_loras = config.engine.max_loras,
              .max_model_len = config.engine.max_model_len,
              .gpu_memory_utilization = config.gpu_memory_utilization,
              .created_unix = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()),
          },
          config.dialect),
      rng(config.seed),
      faults(config.faults) {
  if (config.served_model_names.empty()) config.served_model_names.push_back(config.model);
  for (const auto& [name, path] : config.lora_modules) {
    adapters.emplace_back(name, path);
    engine.LoadLora(name, SimNow());
  }
}

void ModelServer::Impl::Kick() {
  if (engine.step_in_flight()) return;
  ++version;
  absl::Time now = SimNow();
  std::optional<absl::Time> at = engine.StartStep(now);
  if (!at) at = engine.NextWakeTime();
  if (!at) return;
  timer.expires_at(RealAt(*at));
  // A handler whose expiry was already queued is not cancelled by re-arming; the sequence
  // number makes such a stale handler a no-op (it would end a step early).
  uint64_t seq = ++timer_seq;
  timer.async_wait([this, seq](beast::error_code ec) {
    if (!ec && seq == timer_seq) OnTimer();
  });
}

void ModelServer::Impl::OnTimer() {
  if (engine.step_in_flight()) {
    ++version;
    StepResult step = engine.FinishStep();
    metrics.OnStep(step, engine.Stats(), WallNow());
    for (const TokenEvent& e : step.events) Deliver(e);
  }
  Kick();
}

void ModelServer::Impl::Deliver(const TokenEvent& e) {
  auto it = gens.find(e.id);
  if (it == gens.end()) return;
  Generation& g = it->second;
  auto session = g.session.lock();
  if (!session) {
    gens.erase(it);
    if (auto ev = engine.Abort(e.id)) metrics.OnFinishedOutsideStep(*ev);
    return;
  }
  std::string_view token =
      e.new_tokens > 0 ? api::TokenText(g.text_seed, e.output_tokens - 1) : std::string_view();
  std::string_view finish = FinishReasonName(e.finish);
  api::Usage usage{e.prompt_tokens, e.output_tokens};
  if (g.stream) {
    const api::Usage* cont = g.continuous_usage ? &usage : nullptr;
    if (e.first_token && g.meta.endpoint == api::Endpoint::kChatCompletions) {
      session->StreamData(api::ChatRoleChunk(g.meta, cont));
    }
    if (e.new_tokens > 0 || e.finish != FinishReason::kNone) {
      session->StreamData(api::StreamChunk(g.meta, token, finish, cont));
    }
    if (e.finish != FinishReason::kNone) {
      if (g.include_usage) session->StreamData(api::UsageChunk(g.meta, usage));
      session->StreamData(api::kDoneEvent);
      session->EndStream();
    }
  } else {
    g.text.append(token);
    if (e.finish != FinishReason::kNone) {
      session->SendFull(200, "application/json",
                        api::CompleteResponse(g.meta, g.text, finish, usage));
    }
  }
  if (e.finish != FinishReason::kNone) {
    session->GenerationDone();
    gens.erase(it);
    return;
  }
  if (e.first_token && g.drop_after_first) {
    session->GenerationDone();
    session->Drop();
    gens.erase(it);
    Abort(e.id);
  }
}

void ModelServer::Impl::Abort(uint64_t id) {
  ++version;
  gens.erase(id);
  if (auto ev = engine.Abort(id)) metrics.OnFinishedOutsideStep(*ev);
}

std::string ModelServer::Impl::ModelsBody() const {
  std::vector<api::ModelCard> cards;
  for (const auto& name : config.served_model_names) cards.push_back({name, config.model, ""});
  for (const auto& [name, path] : adapters) {
    cards.push_back({name, path, config.served_model_names[0]});
  }
  return api::ModelsJson(cards, created, config.engine.max_model_len);
}

void ModelServer::Impl::Route(const std::shared_ptr<Session>& s, http::verb method,
                              std::string_view path, std::string& body) {
  auto need = [&](http::verb want) {
    if (method == want || (want == http::verb::get && method == http::verb::head)) return true;
    s->SendFull(405, "application/json", "{\"detail\":\"Method Not Allowed\"}");
    return false;
  };
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    if (!need(http::verb::post)) return;
    HandleGeneration(
        s,
        path == "/v1/completions" ? api::Endpoint::kCompletions : api::Endpoint::kChatCompletions,
        body);
  } else if (path == "/metrics" || path == "/prometheus/metrics") {
    if (need(http::verb::get)) HandleMetrics(s);
  } else if (path == "/health" || path == "/ping") {
    if (need(http::verb::get)) s->SendFull(200, "", "");
  } else if (path == "/version") {
    if (need(http::verb::get)) s->SendFull(200, "application/json", "{\"version\":\"0.11.0\"}");
  } else if (path == "/v1/models") {
    if (need(http::verb::get)) s->SendFull(200, "application/json", ModelsBody());
  } else if (path == "/tokenize") {
    if (!need(http::verb::post)) return;
    auto parsed = api::ParseTokenize(body);
    if (auto* err = std::get_if<api::Error>(&parsed)) return s->SendError(*err);
    s->SendFull(200, "application/json",
                api::TokenizeResponseJson(std::get<api::TokenizeRequest>(parsed).tokens,
                                          config.engine.max_model_len));
  } else if (path == "/v1/load_lora_adapter" || path == "/v1/unload_lora_adapter") {
    if (need(http::verb::post)) HandleLora(s, path == "/v1/load_lora_adapter", body);
  } else if (path == "/sim/faults") {
    if (method == http::verb::post) {
      auto applied = ApplyFaultsJson(faults, body);
      if (auto* err = std::get_if<api::Error>(&applied)) return s->SendError(*err);
      faults = std::get<Faults>(applied);
      EPP_LOG_INFO("faults set: {}", FaultsJson(faults));
    } else if (!need(http::verb::get)) {
      return;
    }
    s->SendFull(200, "application/json", FaultsJson(faults));
  } else {
    s->SendFull(404, "application/json", "{\"detail\":\"Not Found\"}");
  }
}

void ModelServer::Impl::HandleMetrics(const std::shared_ptr<Session>& s) {
  auto respond = [this, s] {
    if (faults.metrics_garbage) {
      s->SendFull(200, "text/plain; version=0.0.4; charset=utf-8",
                  "\x01\x02 this is {not\" prometheus text\n}}}\n");
      return;
    }
    if (page_version != version) {
      page = metrics.Render(engine.Stats());
      page_version = version;
    }
    s->SendFull(200, "text/plain; version=0.0.4; charset=utf-8", page);
  };
  if (faults.metrics_delay_ms <= 0) return respond();
  auto t =
      std::make_shared<asio::steady_timer>(io, std::chrono::milliseconds(faults.metrics_delay_ms));
  t->async_wait([t, respond](beast::error_code ec) {
    if (!ec) respond();
  });
}

void ModelServer::Impl::HandleLora(const std::shared_ptr<Session>& s, bool load,
                                   std::string_view body) {
  if (!config.engine.enable_lora) {
    return s->SendError(
        api::BadRequest("LoRA is not enabled on this server (start it with --enable-lora)"));
  }
  auto parsed = api::ParseLoraRequest(body, load);
  if (auto* err = std::get_if<api::Error>(&parsed)) return s->SendError(*err);
  const api::LoraRequest& req = std::get<api::LoraRequest>(parsed);
  auto it = std::find_if(adapters.begin(), adapters.end(),
                         [&](const auto& a) { return a.first == req.name; });
  if (load) {
    if (it != adapters.end()) {
      return s->SendError(
          api::BadRequest(StrCat("The lora adapter '", req.name, "' has already been loaded.")));
    }
    for (const auto& base : config.served_model_names) {
      if (base == req.name) {
        return s->SendError(
            api::BadRequest(StrCat("lora_name: '", req.name, "' is a served model name")));
      }
    }
    adapters.emplace_back(req.name, req.path);
    engine.LoadLora(req.name, SimNow());
    ++version;
    EPP_LOG_INFO("loaded LoRA adapter {} from {}", req.name, req.path);
    return s->SendFull(200, "text/plain; charset=utf-8",
                       StrCat("Success: LoRA adapter '", req.name, "' added successfully."));
  }
  if (it == adapters.end()) {
    return s->SendError(
        api::NotFound(StrCat("The lora adapter '", req.name, "' cannot be found.")));
  }
  adapters.erase(it);
  engine.UnloadLora(req.name);
  ++version;
  EPP_LOG_INFO("unloaded LoRA adapter {}", req.name);
  s->SendFull(200, "text/plain; charset=utf-8",
              StrCat("Success: LoRA adapter '", req.name, "' removed successfully."));
}

void ModelServer::Impl::HandleGeneration(const std::shared_ptr<Session>& s, api::Endpoint ep,
                                         std::string& body) {
  auto parsed = api::ParseGeneration(ep, body);
  if (auto* err = std::get_if<api::Error>(&parsed)) return s->SendError(*err);
  api::GenerationRequest& req = std::get<api::GenerationRequest>(parsed);

  // Faults are rolled once per request, in a fixed order, from the seeded generator.
  double roll_error = Roll(), roll_hang = Roll(), roll_drop = Roll();
  if (roll_error < faults.error_rate) {
    return s->SendError(api::Error{faults.error_status, ErrorTypeForStatus(faults.error_status),
                                   "injected fault: request failed"});
  }
  if (roll_hang < faults.hang_rate) {
    s->WatchForDisconnect(0);  // keeps the connection open and unanswered
    return;
  }

  RequestSpec spec;
  spec.id = next_id++;
  const std::string& base = config.served_model_names[0];
  std::string model = req.model.empty() ? base : req.model;
  bool is_base = std::find(config.served_model_names.begin(), config.served_model_names.end(),
                           model) != config.served_model_names.end();
  if (!is_base) {
    bool is_adapter = std::any_of(adapters.begin(), adapters.end(),
                                  [&](const auto& a) { return a.first == model; });
    if (!is_adapter) {
      return s->SendError(api::NotFound(StrCat("The model `", model, "` does not exist.")));
    }
    spec.lora = model;
  }
  const int prompt_len = static_cast<int>(req.prompt_tokens.size());
  if (req.max_tokens < 0) {
    // vLLM's defaults: 16 for completions, the rest of the context for chat.
    req.max_tokens = ep == api::Endpoint::kCompletions
                         ? 16
                         : std::max(1, config.engine.max_model_len - prompt_len);
  }
  spec.max_tokens = req.max_tokens;
  spec.ignore_eos = req.ignore_eos;
  uint64_t prompt_hash = XXH3_64bits_withSeed(
      req.prompt_tokens.data(), req.prompt_tokens.size() * sizeof(TokenId), config.seed);
  // Where the answer would end on its own: uniform in [1, 2 × mean − 1], fixed per prompt.
  spec.eos_after =
      1 + static_cast<int>(prompt_hash % (2 * static_cast<uint64_t>(config.output_len_mean) - 1));
  spec.cache_salt = std::move(req.cache_salt);
  spec.prompt = std::move(req.prompt_tokens);
  uint64_t id = spec.id;
  if (auto st = engine.Submit(std::move(spec), SimNow()); !st.ok()) {
    return s->SendError(api::BadRequest(std::string(SV(st.message()))));
  }
  metrics.OnRequest(req.max_tokens, 1);
  ++version;

  Generation g;
  g.session = s;
  g.meta.endpoint = ep;
  g.meta.id = StrCat(ep == api::Endpoint::kCompletions ? "cmpl-" : "chatcmpl-",
                     fmt::format("{:016x}{:016x}", rng(), id));
  g.meta.created = absl::ToUnixSeconds(absl::Now());
  g.meta.model = model;
  g.stream = req.stream;
  g.include_usage = req.include_usage;
  g.continuous_usage = req.continuous_usage;
  g.drop_after_first = roll_drop < faults.drop_rate;
  g.prompt_tokens = prompt_len;
  g.text_seed = id ^ config.seed;
  gens.emplace(id, std::move(g));
  if (req.stream) s->BeginStream();
  s->WatchForDisconnect(id);
  Kick();
}

ModelServer::ModelServer(ServerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

ModelServer::~ModelServer() { Stop(); }

absl::StatusOr<uint16_t> ModelServer::Start() {
  beast::error_code ec;
  auto address = asio::ip::make_address(impl_->config.host, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        StrCat("--host: \"", impl_->config.host, "\" is not an IP address"));
  }
  tcp::endpoint ep(address, impl_->config.port);
  auto& acc = impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(StrCat("cannot listen on ", impl_->config.host, ":",
                                         impl_->config.port, ": ", ec.message()));
  }
  uint16_t port = acc.local_endpoint().port();
  ModelServer::Impl* impl = impl_.get();
  net::AcceptLoop(
      acc,
      [impl](tcp::socket socket) {
        beast::error_code nodelay_ec;
        socket.set_option(tcp::no_delay(true), nodelay_ec);
        std::make_shared<Session>(std::move(socket), impl)->Read();
      },
      "modelsim");
  impl_->thread = std::thread([this] { impl_->io.run(); });
  return port;
}

void ModelServer::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
  // The loop is gone: drop the pinned sessions (closing their sockets).
  auto pinned = std::move(impl_->pinned);
  impl_->pinned.clear();
  impl_->gens.clear();
}

}  // namespace epp::sim
