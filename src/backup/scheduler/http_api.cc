// Boost 1.74's Asio has no as_tuple; errors come back through
// redirect_error and are converted to Status here.
#include "backup/scheduler/http_api.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

#include "backup/scheduler/status_json.h"

namespace backy::backup::scheduler {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Protocol = asio::generic::stream_protocol;
using boost::system::error_code;

struct Endpoint {
  Protocol::endpoint ep;
  std::string unix_path;  // set for Unix sockets
};

Result<Endpoint> ParseListen(const std::string& listen) {
  Endpoint out;
  if (listen.starts_with("unix:")) {
    out.unix_path = listen.substr(5);
    out.ep = asio::local::stream_protocol::endpoint(out.unix_path);
    return out;
  }
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("api.listen must be HOST:PORT or unix:PATH",
                                   listen);
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (...) {
    port = -1;
  }
  if (ec || port <= 0 || port > 65535) {
    return Status::InvalidArgument(
        "api.listen: bad address (use a numeric IP and a port)", listen);
  }
  out.ep = asio::ip::tcp::endpoint(addr, static_cast<uint16_t>(port));
  return out;
}

Status FromAsio(const error_code& ec, const std::string& what,
                const std::string& object) {
  if (ec.category() == boost::system::system_category()) {
    return Status::FromErrno(ec.value(), what, object);
  }
  return Status::IOError(what + ": " + ec.message(), object);
}

// Compares without an early exit, so timing does not reveal a prefix.
bool SameToken(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// At most `burst` lines per `window`; the first line of the next window
// says how many were left out. Keeps a flood of bad requests or failing
// accepts from filling the disk with the log.
class LogLimiter {
 public:
  LogLimiter(int burst, std::chrono::seconds window)
      : burst_(burst), window_(window) {}

  // True when a line may be logged now; then *suppressed is how many lines
  // were left out since the last one logged.
  bool Allow(uint64_t* suppressed) {
    const auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= window_) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ >= burst_) {
      ++suppressed_;
      return false;
    }
    ++used_;
    *suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  const int burst_;
  const std::chrono::steady_clock::duration window_;
  std::chrono::steady_clock::time_point window_start_{};
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

std::string Suppressed(uint64_t n) {
  return n == 0 ? "" : " (" + std::to_string(n) + " similar lines not logged)";
}

// A request target for the log: at most 80 bytes, control characters and
// non-ASCII bytes as '?', so a client cannot forge log lines.
std::string LogSafe(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c >= 0x7f) ? '?' : s[i];
  }
  if (s.size() > 80) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

// Limits of one request: the request line and header fields together, and
// the body (the API's requests have none). Nothing beyond them is buffered.
constexpr uint32_t kHeaderLimit = 8 * 1024;
constexpr uint64_t kBodyLimit = 64 * 1024;
// A client must send its request within this time, and then read the
// answer within it again; after that the connection is closed.
constexpr auto kIdleTimeout = std::chrono::seconds(5);
// At most this many connections are served at once (fewer when the file
// descriptor limit is low: a quarter of it, so the scheduler keeps
// descriptors for its jobs); more are closed at once.
constexpr int kMaxConnections = 64;
// After a failed accept (EMFILE, ENFILE, ENOMEM): wait this long.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(200);
// After an error answer, read (and drop) at most this much of what the
// client still sends, so it sees the answer instead of a reset.
constexpr size_t kDrainLimit = 256 * 1024;

int MaxConnections() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
    return kMaxConnections;
  }
  return static_cast<int>(
      std::clamp<rlim_t>(rl.rlim_cur / 4, 1, kMaxConnections));
}

class ServerImpl final : public ApiServer {
 public:
  ServerImpl(asio::io_context& ioc, Endpoint ep, std::string token,
             ApiHandler handler)
      : acceptor_(ioc),
        ep_(std::move(ep)),
        state_(std::make_shared<Shared>(std::move(token), std::move(handler))) {
  }

  Status Listen() {
    error_code ec;
    const std::string& path = ep_.unix_path;
    if (!path.empty()) {
      Status s = RemoveStaleSocket(path);
      if (!s.ok()) return s;
    }
    acceptor_.open(ep_.ep.protocol(), ec);
    if (!ec && path.empty()) {
      acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
      // The socket file is created owner-only: no window in which another
      // user could connect (the token guards the API even then).
      const mode_t old = ::umask(0177);
      acceptor_.bind(ep_.ep, ec);
      ::umask(old);
    }
    if (!ec && !path.empty()) {
      struct stat st;
      if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        created_ = true;
        created_dev_ = st.st_dev;
        created_ino_ = st.st_ino;
        ::chmod(path.c_str(), 0600);
      }
    }
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      Status s =
          FromAsio(ec, "api: cannot listen", path.empty() ? "tcp" : path);
      Stop();
      return s;
    }
    asio::co_spawn(acceptor_.get_executor(), Accept(&acceptor_, state_),
                   asio::detached);
    return Status::OK();
  }

  void SetToken(std::string token) override {
    state_->token = std::move(token);
  }

  void SetPublicPaths(std::set<std::string> paths) override {
    state_->public_paths = std::move(paths);
  }

  void Stop() override {
    state_->stopped = true;
    error_code ec;
    acceptor_.close(ec);
    // Only the socket this server made goes: never a file that replaced it.
    if (created_) {
      struct stat st;
      if (::lstat(ep_.unix_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) &&
          st.st_dev == created_dev_ && st.st_ino == created_ino_) {
        ::unlink(ep_.unix_path.c_str());
      }
      created_ = false;
    }
  }

  ~ServerImpl() override { Stop(); }

 private:
  struct Shared {
    Shared(std::string t, ApiHandler h)
        : token(std::move(t)), handler(std::move(h)) {}
    std::string token;
    ApiHandler handler;
    std::set<std::string> public_paths;
    bool stopped = false;
    int active = 0;  // connections being served
    const int max_active = MaxConnections();
    LogLimiter accept_log{5, std::chrono::seconds(60)};
    LogLimiter refused_log{5, std::chrono::seconds(60)};
    LogLimiter bad_log{20, std::chrono::seconds(60)};  // 401 and 4xx
  };

  // A socket file left by an earlier run is replaced; anything else at
  // `path` (a regular file, a directory, a symlink) is an error, and so is
  // a socket someone still listens on.
  static Status RemoveStaleSocket(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return Status::OK();
      return Status::FromErrno(errno, "api.listen: lstat", path);
    }
    if (!S_ISSOCK(st.st_mode)) {
      return Status::InvalidArgument(
          "api.listen: the path exists and is not a socket (not replaced; "
          "remove it or choose another path)",
          path);
    }
    asio::io_context probe_ctx;
    asio::local::stream_protocol::socket probe(probe_ctx);
    error_code ec;
    probe.connect(asio::local::stream_protocol::endpoint(path), ec);
    if (!ec) {
      return Status::Busy("api.listen: another process listens on the socket",
                          path);
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno(errno, "api.listen: remove the stale socket",
                               path);
    }
    return Status::OK();
  }

  static asio::awaitable<void> Accept(
      asio::basic_socket_acceptor<Protocol>* acc,
      std::shared_ptr<Shared> state) {
    asio::steady_timer backoff(co_await asio::this_coro::executor);
    for (;;) {
      error_code ec;
      Protocol::socket sock = co_await acc->async_accept(
          asio::redirect_error(asio::use_awaitable, ec));
      if (state->stopped) co_return;
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        // Out of descriptors or memory: the connection stays queued, so
        // retrying at once would spin. Wait, and log that only now and then.
        uint64_t n = 0;
        if (state->accept_log.Allow(&n)) {
          spdlog::warn("api: accept: {}; pausing accepts{}", ec.message(),
                       Suppressed(n));
        }
        backoff.expires_after(kAcceptBackoff);
        co_await backoff.async_wait(
            asio::redirect_error(asio::use_awaitable, ec));
        if (state->stopped) co_return;
        continue;
      }
      if (state->active >= state->max_active) {
        sock.close(ec);
        uint64_t n = 0;
        if (state->refused_log.Allow(&n)) {
          spdlog::warn("api: {} connections open, closing new ones{}",
                       state->active, Suppressed(n));
        }
        continue;
      }
      ++state->active;
      asio::co_spawn(acc->get_executor(), Serve(std::move(sock), state),
                     asio::detached);
    }
  }

  // An answer the server makes itself (not the handler's).
  static ApiResponse Refusal(int status, const char* what) {
    return ApiError(status, what);
  }

  static asio::awaitable<void> Serve(Protocol::socket sock,
                                     std::shared_ptr<Shared> state) {
    struct Slot {
      Shared* s;
      ~Slot() { --s->active; }
    } slot{state.get()};
    auto sock_ptr = std::make_shared<Protocol::socket>(std::move(sock));
    // A slow or silent client is cut off after kIdleTimeout.
    asio::steady_timer deadline(sock_ptr->get_executor());
    auto arm = [&deadline, weak = std::weak_ptr(sock_ptr)] {
      deadline.expires_after(kIdleTimeout);
      deadline.async_wait([weak](error_code e) {
        if (e) return;
        if (auto s = weak.lock()) {
          error_code ignored;
          s->close(ignored);
        }
      });
    };
    arm();
    error_code ec;
    beast::flat_buffer buf(kHeaderLimit + kBodyLimit + 4096);
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    co_await http::async_read(*sock_ptr, buf, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    ApiResponse out;
    std::string method = "-", path = "-";
    unsigned version = 11;
    bool drain = false;
    if (ec == http::error::header_limit ||
        (ec == http::error::buffer_overflow && !parser.is_header_done())) {
      out = Refusal(431, "request header too large");
      drain = true;
    } else if (ec == http::error::body_limit ||
               ec == http::error::buffer_overflow) {
      out = Refusal(413, "request body too large");
      drain = true;
    } else if (ec &&
               ec.category() ==
                   http::make_error_code(http::error::end_of_stream)
                       .category() &&
               ec != http::error::end_of_stream &&
               ec != http::error::partial_message) {
      out = Refusal(400, "malformed request");
      drain = true;
    } else if (ec) {
      co_return;  // gone, timed out or reset: nobody to answer
    }
    if (parser.is_header_done()) {
      const auto& req = parser.get();
      method = std::string(req.method_string());
      path = std::string(req.target());
      version = req.version();
    }
    if (!ec) {
      const auto& req = parser.get();
      const std::string auth(req[http::field::authorization]);
      const std::string_view prefix = "Bearer ";
      if (state->public_paths.count(path)) {
        out = state->handler(method, path);
      } else if (state->token.empty() || !auth.starts_with(prefix) ||
                 !SameToken(std::string_view(auth).substr(prefix.size()),
                            state->token)) {
        out = ApiError(401, "missing or wrong bearer token");
      } else {
        out = state->handler(method, path);
      }
    }
    if (out.status == 401 || out.status == 400 || out.status == 413 ||
        out.status == 431) {
      uint64_t n = 0;
      if (state->bad_log.Allow(&n)) {
        spdlog::info("api: {} {} {}{}", LogSafe(method), LogSafe(path),
                     out.status, Suppressed(n));
      }
    } else if (method == "GET" && path == "/metrics" && out.status == 200) {
      // A Prometheus server scrapes every few seconds: at info level that
      // would be most of the log.
      spdlog::debug("api: GET /metrics 200");
    } else {
      spdlog::info("api: {} {} {}", LogSafe(method), LogSafe(path), out.status);
    }
    http::response<http::string_body> res{static_cast<http::status>(out.status),
                                          version == 10 ? 10u : 11u};
    res.set(http::field::server, "backy");
    res.set(http::field::content_type, out.content_type);
    if (out.status == 401) {
      res.set(http::field::www_authenticate, "Bearer realm=\"backy\"");
    }
    res.keep_alive(false);
    res.body() = std::move(out.body);
    res.prepare_payload();
    arm();
    co_await http::async_write(*sock_ptr, res,
                               asio::redirect_error(asio::use_awaitable, ec));
    sock_ptr->shutdown(asio::socket_base::shutdown_send, ec);
    if (drain && !ec) {
      // The client may still be sending what we refused: read a bounded
      // amount, so that closing does not reset the connection before it
      // has read the answer.
      std::array<char, 4096> sink;
      size_t drained = 0;
      while (drained < kDrainLimit) {
        const size_t n = co_await sock_ptr->async_read_some(
            asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        drained += n;
        if (ec) break;
      }
    }
    sock_ptr->shutdown(asio::socket_base::shutdown_both, ec);
    deadline.cancel();
  }

  asio::basic_socket_acceptor<Protocol> acceptor_;
  Endpoint ep_;
  std::shared_ptr<Shared> state_;
  bool created_ = false;  // the Unix socket file is ours to remove
  dev_t created_dev_ = 0;
  ino_t created_ino_ = 0;
};

}  // namespace

Result<std::unique_ptr<ApiServer>> ApiServer::Start(asio::io_context& ioc,
                                                    const std::string& listen,
                                                    std::string token,
                                                    ApiHandler handler) {
  auto ep = ParseListen(listen);
  if (!ep.ok()) return ep.status();
  auto server = std::make_unique<ServerImpl>(
      ioc, std::move(*ep), std::move(token), std::move(handler));
  Status s = server->Listen();
  if (!s.ok()) return s;
  return std::unique_ptr<ApiServer>(std::move(server));
}

ApiResponse ApiError(int status, std::string_view message) {
  return {status, DumpJsonLine({{"error", message}})};
}

Result<ApiResponse> ApiRequest(const ApiConfig& api, const std::string& method,
                               const std::string& path) {
  if (api.token.empty()) {
    return Status::InvalidArgument(
        "the config sets no api.token or api.token-file");
  }
  auto ep = ParseListen(api.listen);
  if (!ep.ok()) return ep.status();
  asio::io_context ioc;
  Protocol::socket sock(ioc);
  error_code ec;
  sock.connect(ep->ep, ec);
  if (ec) {
    return FromAsio(ec,
                    "cannot reach the scheduler's API (is 'backy "
                    "scheduler' running?)",
                    api.listen);
  }
  http::request<http::string_body> req{http::string_to_verb(method), path, 11};
  req.set(http::field::host, "backy");
  req.set(http::field::authorization, "Bearer " + api.token);
  req.prepare_payload();
  http::write(sock, req, ec);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  if (!ec) http::read(sock, buf, res, ec);
  if (ec && ec != http::error::end_of_stream) {
    return FromAsio(ec, "api request " + method + " " + path, api.listen);
  }
  return ApiResponse{static_cast<int>(res.result_int()), res.body()};
}

}  // namespace backy::backup::scheduler
