// Listening sockets, the accept loops, signals and shutdown.
#include "nbd/server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <string_view>

#include "nbd/internal.h"

namespace backy::nbd {

namespace {

using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

Status FromAsio(const boost::system::error_code& ec, std::string_view what,
                std::string_view object) {
  if (ec.category() == boost::system::system_category()) {
    return Status::FromErrno(ec.value(), what, object);
  }
  return Status::IOError(std::string(what) + ": " + ec.message(), object);
}

std::optional<int> EnvInt(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  int out = 0;
  const std::string_view s(v);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return out;
}

// systemd's sd_listen_fds() protocol: LISTEN_PID names us, LISTEN_FDS
// sockets start at fd 3. Returns how many were passed (0 if none).
int ListenFds() {
  const std::optional<int> pid = EnvInt("LISTEN_PID");
  const std::optional<int> fds = EnvInt("LISTEN_FDS");
  if (!pid || !fds || *pid != ::getpid() || *fds <= 0) return 0;
  // Not for our children.
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  return *fds;
}

Status AdoptListenFds(asio::io_context& io, int n,
                      std::vector<std::unique_ptr<Acceptor>>* out) {
  constexpr int kFirstFd = 3;
  for (int fd = kFirstFd; fd < kFirstFd + n; ++fd) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      return Status::FromErrno(errno, "socket activation: getsockname",
                               "fd " + std::to_string(fd));
    }
    const int family = ss.ss_family;
    const int proto = family == AF_UNIX ? 0 : IPPROTO_TCP;
    auto acc = std::make_unique<Acceptor>(io);
    boost::system::error_code ec;
    acc->assign(asio::generic::stream_protocol(family, proto), fd, ec);
    if (ec) {
      return FromAsio(ec, "socket activation", "fd " + std::to_string(fd));
    }
    out->push_back(std::move(acc));
  }
  return Status::OK();
}

Status Listen(asio::io_context& io,
              const asio::generic::stream_protocol::endpoint& ep,
              std::string_view name,
              std::vector<std::unique_ptr<Acceptor>>* out) {
  auto acc = std::make_unique<Acceptor>(io);
  boost::system::error_code ec;
  acc->open(ep.protocol(), ec);
  if (!ec && ep.protocol().family() != AF_UNIX) {
    acc->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && ep.protocol().family() == AF_INET6) {
      acc->set_option(asio::ip::v6_only(true), ec);
    }
  }
  if (!ec) acc->bind(ep, ec);
  if (!ec) acc->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return FromAsio(ec, "listen", name);
  out->push_back(std::move(acc));
  return Status::OK();
}

Status ListenTcp(asio::io_context& io, const ServerOptions& o,
                 std::vector<std::unique_ptr<Acceptor>>* out) {
  asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(o.host, std::to_string(o.port),
                                  asio::ip::tcp::resolver::passive |
                                      asio::ip::tcp::resolver::numeric_service,
                                  ec);
  const std::string where = o.host + ":" + std::to_string(o.port);
  if (ec) return FromAsio(ec, "resolving listen address", where);
  Status first_error;
  for (const auto& entry : results) {
    Status s = Listen(io, entry.endpoint(), where, out);
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  if (out->empty()) {
    return first_error.ok() ? Status::NotFound("no address to listen on", where)
                            : first_error;
  }
  return Status::OK();
}

Status ListenUnix(asio::io_context& io, const std::string& path,
                  std::vector<std::unique_ptr<Acceptor>>* out) {
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
    ::unlink(path.c_str());  // stale socket from an earlier run
  }
  return Listen(io, asio::local::stream_protocol::endpoint(path), path, out);
}

asio::awaitable<void> AcceptLoop(Acceptor& acceptor, ServerState& server) {
  const bool tcp = acceptor.local_endpoint().protocol().family() != AF_UNIX;
  asio::steady_timer backoff(server.io);
  for (;;) {
    boost::system::error_code ec;
    Socket socket = co_await acceptor.async_accept(Redirect(ec));
    if (server.stopping) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of fds or memory: wait a little instead of spinning.
      spdlog::debug("nbd: accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(100));
      co_await backoff.async_wait(Redirect(ec));
      continue;
    }
    if (tcp) {
      socket.set_option(asio::ip::tcp::no_delay(true), ec);
    } else {
      // A Unix socket's default send buffer (208 KiB) holds less than one
      // 256 KiB read reply, so the server stalls on every reply until the
      // client drains it; a larger one measured ~10 % faster sequential
      // reads. The kernel caps it at net.core.wmem_max (TCP keeps its
      // autotuning: setting SO_SNDBUF there would disable it).
      socket.set_option(asio::socket_base::send_buffer_size(4 << 20), ec);
    }
    auto conn = std::make_shared<Connection>(server, std::move(socket),
                                             ++server.next_id);
    asio::co_spawn(server.io, Connection::Run(std::move(conn)),
                   [](std::exception_ptr e) {
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::warn("nbd: connection failed: {}", ex.what());
                     }
                   });
  }
}

}  // namespace

Status RunServer(const ServerOptions& options, ExportProvider& provider) {
  asio::io_context io(1);
  asio::thread_pool pool(std::max<uint32_t>(1, options.worker_threads));
  ServerState server(options, provider, io, pool);

  std::vector<std::unique_ptr<Acceptor>> acceptors;
  Status s;
  std::string unix_path;
  const int passed = options.socket_activation ? ListenFds() : 0;
  if (passed > 0) {
    s = AdoptListenFds(io, passed, &acceptors);
  } else if (!options.unix_socket.empty()) {
    s = ListenUnix(io, options.unix_socket, &acceptors);
    if (s.ok()) unix_path = options.unix_socket;
  } else {
    s = ListenTcp(io, options, &acceptors);
  }
  if (!s.ok()) {
    pool.join();
    return s;
  }

  asio::signal_set signals(io, SIGINT, SIGTERM);
  // sendfile(2) has no MSG_NOSIGNAL: a client that hangs up mid-reply must
  // cost an EPIPE, not the process.
  ::signal(SIGPIPE, SIG_IGN);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::debug("nbd: signal {}, shutting down", signo);
    server.stopping = true;
    for (auto& acc : acceptors) {
      boost::system::error_code ignored;
      acc->close(ignored);
    }
    // Close() erases nothing; Run() does that when it finishes.
    for (Connection* c : std::vector<Connection*>(server.connections.begin(),
                                                  server.connections.end())) {
      c->Close();
    }
  });

  for (auto& acc : acceptors) {
    asio::co_spawn(io, AcceptLoop(*acc, server), asio::detached);
  }
  if (options.on_ready) options.on_ready();

  try {
    io.run();
  } catch (const std::exception& e) {
    s = Status::IOError(std::string("nbd server: ") + e.what());
  }
  pool.join();
  if (!unix_path.empty()) ::unlink(unix_path.c_str());
  return s;
}

}  // namespace backy::nbd
