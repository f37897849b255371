// Test helper: a plain-HTTP/1.1 server on 127.0.0.1:0 that answers each request (any method) as
// a test script decides — a whole body, or a chunked stream (a watch) sent piece by piece,
// optionally torn off mid-stream or held open — and records every request. One connection per
// request (Connection: close), a thread per connection; POSIX sockets.
#ifndef EPP_TESTING_SCRIPTED_API_SERVER_H_
#define EPP_TESTING_SCRIPTED_API_SERVER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace epp::testing {

class ScriptedApiServer {
 public:
  struct Request {
    std::string method;
    std::string target;
    std::string body;
    std::string authorization;
  };
  struct Reply {
    int status = 200;
    std::string body;  // sent whole unless `stream`
    bool stream = false;
    std::vector<std::string> chunks;  // with stream: each sent as one HTTP chunk
    std::chrono::milliseconds chunk_delay{0};
    bool torn = false;       // with stream: close without the terminating chunk
    bool hold_open = false;  // with stream: after the chunks, stay open until the server stops
    std::string headers;     // extra header lines, each ending in \r\n
  };
  using Handler = std::function<Reply(const Request&)>;

  explicit ScriptedApiServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~ScriptedApiServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept(); closed only after the join
    accept_thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : threads_) t.join();
    ::close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // Requests whose target starts with `prefix` and contains `part`.
  size_t Count(const std::string& method, const std::string& part) const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& r : requests_) {
      if (r.method == method && r.target.find(part) != std::string::npos) ++n;
    }
    return n;
  }
  // Closes every open connection (a server restart, a network blip).
  void DropConnections() {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      open_fds_.push_back(fd);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  static bool WriteAll(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  void Serve(int fd) {
    std::string in;
    char buf[4096];
    size_t header_end;
    while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return Finish(fd);
      in.append(buf, static_cast<size_t>(n));
    }
    Request req;
    std::string head = in.substr(0, header_end);
    size_t sp1 = head.find(' ');
    size_t sp2 = head.find(' ', sp1 + 1);
    req.method = head.substr(0, sp1);
    req.target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t content_length = 0;
    size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos < head.size()) {
      size_t next = head.find("\r\n", pos + 2);
      std::string line =
          head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      std::string lower;
      for (char c : line) lower.push_back(static_cast<char>(std::tolower(c)));
      if (lower.rfind("content-length:", 0) == 0) content_length = std::stoul(line.substr(15));
      if (lower.rfind("authorization:", 0) == 0) req.authorization = line.substr(15);
      pos = next;
    }
    std::string body = in.substr(header_end + 4);
    while (body.size() < content_length) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return Finish(fd);
      body.append(buf, static_cast<size_t>(n));
    }
    req.body = body;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
    }
    Reply reply = handler_(req);
    std::string out =
        "HTTP/1.1 " + std::to_string(reply.status) + " X\r\nConnection: close\r\n" + reply.headers;
    if (!reply.stream) {
      out +=
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(reply.body.size()) +
          "\r\n\r\n" + reply.body;
      WriteAll(fd, out);
      return Finish(fd);
    }
    out += "Content-Type: application/json;stream=watch\r\nTransfer-Encoding: chunked\r\n\r\n";
    if (!WriteAll(fd, out)) return Finish(fd);
    for (const auto& chunk : reply.chunks) {
      if (reply.chunk_delay.count() > 0) std::this_thread::sleep_for(reply.chunk_delay);
      char size[32];
      std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
      if (!WriteAll(fd, size + chunk + "\r\n")) return Finish(fd);
    }
    if (reply.hold_open) {
      while (!stopping_) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);  // returns on shutdown or client close
        if (n <= 0) break;
      }
    } else if (!reply.torn) {
      WriteAll(fd, "0\r\n\r\n");
    }
    Finish(fd);
  }

  void Finish(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.remove(fd);
    ::close(fd);
  }

  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::list<int> open_fds_;
  std::vector<Request> requests_;
  std::list<std::thread> threads_;
  std::thread accept_thread_;
};

}  // namespace epp::testing

#endif  // EPP_TESTING_SCRIPTED_API_SERVER_H_
