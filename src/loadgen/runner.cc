#include "loadgen/runner.h"

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <limits>
#include <memory>
#include <optional>

#include "common/status_macros.h"
#include "common/strings.h"
#include "loadgen/client.h"

namespace epp::loadgen {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

StreamingClient::Options ClientOptions(const LoadgenConfig& c) {
  StreamingClient::Options o;
  o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(c.timeout_s));
  o.headers = c.headers;
  return o;
}

// One run on the caller's io_context. Every method runs on its thread.
class Run {
 public:
  Run(asio::io_context& io, const LoadgenConfig& config, const RunOptions& options,
      StreamingClient::Target target)
      : config_(config),
        options_(options),
        target_(std::move(target)),
        client_(io, ClientOptions(config)),
        timer_(io),
        progress_(io) {
    if (options.stop_on_signals) signals_.emplace(io, SIGINT, SIGTERM);
  }

  void Start() {
    t0_ = Clock::now();
    last_done_ = t0_;
    limit_ = RequestLimit(config_);
    if (config_.duration_s > 0) end_ = t0_ + Seconds(config_.duration_s);
    WorkloadSpec spec = SelectedSpec(config_);
    if (signals_) {
      signals_->async_wait([this](const boost::system::error_code& ec, int) {
        if (!ec) Stop();
      });
    }
    if (options_.progress_every_s > 0) ArmProgress();
    if (closed_loop()) {
      requests_ = MakeGenerator(spec, config_.seed, std::mt19937_64(config_.seed));
      for (int i = 0; i < config_.concurrency && MoreForClosedLoop(); ++i) Send(Clock::now());
    } else {
      Arrivals a;
      a.rate = config_.rate;
      a.poisson = config_.poisson;
      a.seed = config_.seed;
      a.seconds =
          config_.duration_s > 0 ? config_.duration_s : std::numeric_limits<double>::infinity();
      a.max_requests = limit_;
      OpenLoopPlan plan = PlanOpenLoop(spec, a);
      arrivals_ = std::move(plan.arrivals);
      requests_ = std::move(plan.requests);
      ArmArrivals();
    }
    MaybeFinish();
  }

  RunResult Result() {
    RunResult r;
    std::sort(records_.begin(), records_.end(),
              [](const RequestRecord& a, const RequestRecord& b) { return a.index < b.index; });
    r.summary = Summarize(records_, SecondsBetween(t0_, last_done_));
    r.summary.connections_opened = client_.connections_opened();
    r.summary.interrupted = interrupted_;
    r.records = std::move(records_);
    return r;
  }

 private:
  bool closed_loop() const { return config_.concurrency > 0; }

  bool MoreForClosedLoop() const {
    return !stopping_ && (limit_ == 0 || sent_ < limit_) && (!end_ || Clock::now() < *end_);
  }

  bool MoreToSend() const {
    if (stopping_) return false;
    return closed_loop() ? MoreForClosedLoop() : next_arrival_ < arrivals_.size();
  }

  void ArmArrivals() {
    if (stopping_ || next_arrival_ >= arrivals_.size()) return;
    timer_.expires_at(t0_ + Seconds(arrivals_[next_arrival_]));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      Clock::time_point now = Clock::now();
      // Everything due by now goes, each stamped with its own due time.
      while (!stopping_ && next_arrival_ < arrivals_.size()) {
        Clock::time_point due = t0_ + Seconds(arrivals_[next_arrival_]);
        if (due > now) break;
        ++next_arrival_;
        Send(due);
      }
      ArmArrivals();
      MaybeFinish();
    });
  }

  void ArmProgress() {
    progress_.expires_after(Seconds(options_.progress_every_s));
    progress_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      std::fprintf(stderr, "loadgen: %.0f s: %lld sent, %lld done (%lld failed), %d in flight\n",
                   SecondsBetween(t0_, Clock::now()), static_cast<long long>(sent_),
                   static_cast<long long>(done_), static_cast<long long>(failed_),
                   client_.in_flight());
      ArmProgress();
    });
  }

  void Send(Clock::time_point due) {
    WorkRequest w = requests_->Next();
    size_t slot = records_.size();
    RequestRecord& rec = records_.emplace_back();
    rec.index = sent_++;
    rec.scheduled_s = SecondsBetween(t0_, due);
    rec.model = w.model;
    rec.prompt_bytes = static_cast<int64_t>(w.prompt.size());
    rec.max_tokens = w.max_tokens;
    rec.group = w.group;
    std::string body = config_.endpoint == "/v1/chat/completions" ? ChatBody(w, /*stream=*/true)
                                                                  : CompletionBody(w, true);
    client_.Post(target_, config_.endpoint, std::move(body), due,
                 [this, slot](RequestResult result) { Finished(slot, std::move(result)); });
  }

  void Finished(size_t slot, RequestResult result) {
    ++done_;
    if (!result.ok()) ++failed_;
    records_[slot].result = std::move(result);
    last_done_ = Clock::now();
    if (closed_loop() && MoreForClosedLoop()) Send(Clock::now());
    MaybeFinish();
  }

  void Stop() {
    if (stopping_) return;
    stopping_ = true;
    interrupted_ = true;
    timer_.cancel();
    client_.Shutdown();  // in-flight requests finish as cancelled
    MaybeFinish();
  }

  void MaybeFinish() {
    if (finished_ || done_ < sent_ || MoreToSend()) return;
    finished_ = true;
    // Nothing may stay pending on the loop, so that run() returns.
    timer_.cancel();
    progress_.cancel();
    if (signals_) signals_->cancel();
    client_.Shutdown();
  }

  const LoadgenConfig& config_;
  const RunOptions options_;
  const StreamingClient::Target target_;
  StreamingClient client_;
  asio::steady_timer timer_;
  asio::steady_timer progress_;
  std::optional<asio::signal_set> signals_;

  Clock::time_point t0_;
  Clock::time_point last_done_;
  std::optional<Clock::time_point> end_;
  int64_t limit_ = 0;
  std::unique_ptr<RequestGenerator> requests_;
  std::vector<double> arrivals_;
  size_t next_arrival_ = 0;
  std::vector<RequestRecord> records_;
  int64_t sent_ = 0;
  int64_t done_ = 0;
  int64_t failed_ = 0;
  bool stopping_ = false;
  bool interrupted_ = false;
  bool finished_ = false;
};

}  // namespace

absl::StatusOr<RunResult> RunLoad(const LoadgenConfig& config, const RunOptions& options) {
  RETURN_IF_ERROR(ValidateConfig(config));
  ASSIGN_OR_RETURN(HostPort host_port, ParseTarget(config.target));
  asio::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto resolved = resolver.resolve(host_port.host, StrCat(host_port.port), ec);
  if (ec || resolved.empty()) {
    return absl::UnavailableError(
        StrCat("--target: cannot resolve \"", host_port.host, "\": ", ec.message()));
  }
  // A name with several addresses (localhost: ::1 and 127.0.0.1) goes to the first that
  // accepts a connection, as a browser would; a single address is used as it is.
  tcp::endpoint endpoint = resolved.begin()->endpoint();
  if (resolved.size() > 1) {
    for (const auto& entry : resolved) {
      tcp::socket probe(io);
      boost::system::error_code probe_ec;
      probe.connect(entry.endpoint(), probe_ec);
      if (!probe_ec) {
        endpoint = entry.endpoint();
        break;
      }
    }
  }
  Run run(io, config, options,
          StreamingClient::Target{endpoint, JoinHostPort(host_port.host, host_port.port)});
  run.Start();
  io.run();
  return run.Result();
}

}  // namespace epp::loadgen
