// Listening sockets, the accept loops, signals and shutdown.
#include "nbd/server.h"

#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
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

// ---- Listen policy ----------------------------------------------------------

// Whether `sa` is a loopback address: 127.0.0.0/8, ::1, or ::ffff:127.x.
// Wildcards (0.0.0.0, ::) are not: they listen on every interface.
bool IsLoopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
           in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

// Refuses a non-loopback TCP address unless TLS is required or the
// operator said --insecure.
Status CheckListenAddress(const sockaddr* sa, TlsMode mode, bool insecure,
                          std::string_view where) {
  if (sa->sa_family == AF_UNIX || IsLoopback(sa)) return Status::OK();
  if (mode == TlsMode::kRequire || insecure) return Status::OK();
  return Status::InvalidArgument(
      "refusing to serve disks on a non-loopback address without TLS "
      "required (give --tls-certificates or --tls-psk, and not --tls on; or "
      "--insecure)",
      where);
}

Status AdoptListenFds(asio::io_context& io, int n, TlsMode mode, bool insecure,
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
    Status policy = CheckListenAddress(
        reinterpret_cast<const sockaddr*>(&ss), mode, insecure,
        "socket activation fd " + std::to_string(fd));
    if (!policy.ok()) return policy;
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

Status ListenTcp(asio::io_context& io, const ServerOptions& o, TlsMode mode,
                 std::vector<std::unique_ptr<Acceptor>>* out) {
  asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(o.host, std::to_string(o.port),
                                  asio::ip::tcp::resolver::passive |
                                      asio::ip::tcp::resolver::numeric_service,
                                  ec);
  const std::string where =
      (o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host) +
      ":" + std::to_string(o.port);
  if (ec) return FromAsio(ec, "resolving listen address", where);
  // Every address first: a name that is partly loopback binds nothing.
  for (const auto& entry : results) {
    Status s =
        CheckListenAddress(entry.endpoint().data(), mode, o.insecure, where);
    if (!s.ok()) return s;
  }
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

Result<gid_t> GroupId(const std::string& name) {
  std::vector<char> buf(16384);
  struct group gr;
  struct group* found = nullptr;
  const int rc =
      ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
  if (rc != 0) return Status::FromErrno(rc, "looking up group", name);
  if (found == nullptr) return Status::NotFound("no such group", name);
  return found->gr_gid;
}

// The socket is bound in a fresh 0700 directory beside `path`, given its
// mode and group there, where nobody else can reach it, and only then
// renamed into place: at no moment is it reachable with wider permissions
// than asked for (a chmod after binding at `path` would leave a window, and
// could follow a symlink planted there).
Status ListenUnix(asio::io_context& io, const ServerOptions& o,
                  std::vector<std::unique_ptr<Acceptor>>* out) {
  const std::string& path = o.unix_socket;
  if ((o.socket_mode & ~0777u) != 0 || (o.socket_mode & 0600) != 0600) {
    return Status::InvalidArgument(
        "socket mode must be octal, at most 0777, and let the owner read "
        "and write",
        path);
  }
  if ((o.socket_mode & 0007) != 0 && !o.insecure) {
    char mode[16];
    std::snprintf(mode, sizeof(mode), "%04o", o.socket_mode);
    return Status::InvalidArgument(
        std::string("refusing socket mode ") + mode +
            ": every local user could read the disks (use --insecure)",
        path);
  }
  gid_t gid = static_cast<gid_t>(-1);
  if (!o.socket_group.empty()) {
    Result<gid_t> g = GroupId(o.socket_group);
    if (!g.ok()) return g.status();
    gid = *g;
  }
  // asio's endpoint would throw on a path longer than sun_path holds.
  constexpr size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1;
  if (path.size() > kMaxPath) {
    return Status::InvalidArgument(
        "socket path longer than " + std::to_string(kMaxPath) + " bytes", path);
  }
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Status::InvalidArgument("exists and is not a socket", path);
    }
  }
  const std::filesystem::path target(path);
  std::string dir_template =
      (target.parent_path().empty() ? std::filesystem::path(".")
                                    : target.parent_path()) /
      ".nbd.XXXXXX";
  if (::mkdtemp(dir_template.data()) == nullptr) {
    return Status::FromErrno(errno, "creating a private directory for", path);
  }
  const std::string tmp = dir_template + "/s";
  Status s;
  if (tmp.size() > kMaxPath) {
    s = Status::InvalidArgument(
        "socket path too long to bind it privately first (its directory "
        "plus 13 bytes must fit in " +
            std::to_string(kMaxPath) + ")",
        path);
  } else {
    s = Listen(io, asio::local::stream_protocol::endpoint(tmp), path, out);
  }
  if (s.ok() && gid != static_cast<gid_t>(-1) &&
      ::lchown(tmp.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    s = Status::FromErrno(errno, "setting group " + o.socket_group, path);
  }
  if (s.ok() && ::chmod(tmp.c_str(), o.socket_mode) != 0) {
    s = Status::FromErrno(errno, "setting the mode of", path);
  }
  // Replaces a stale socket from an earlier run.
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = Status::FromErrno(errno, "moving the socket into place", path);
  }
  ::unlink(tmp.c_str());
  ::rmdir(dir_template.c_str());
  if (!s.ok()) out->clear();
  return s;
}

// The effective TLS mode of `o` (see TlsOptions::mode).
Result<TlsMode> ResolveTlsMode(const TlsOptions& o) {
  const bool creds = !o.certificates_dir.empty() || !o.psk_file.empty();
  const TlsMode mode =
      o.mode.value_or(creds ? TlsMode::kRequire : TlsMode::kOff);
  if (mode == TlsMode::kOff && creds) {
    return Status::InvalidArgument(
        "TLS credentials given with --tls off (drop them, or use --tls on or "
        "require)");
  }
  if (mode != TlsMode::kOff && !creds) {
    return Status::InvalidArgument(
        "--tls on/require needs --tls-certificates or --tls-psk");
  }
  if (o.verify_peer && o.certificates_dir.empty()) {
    return Status::InvalidArgument(
        "--tls-verify-peer needs --tls-certificates (client certificates "
        "are x509)");
  }
  return mode;
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

std::string DescribeConnection(const ConnectionRecord& r) {
  std::string out = "nbd[" + std::to_string(r.id) + "] " + r.client.peer;
  if (!r.client.tls) {
    out += ", no TLS";
  } else if (r.client.identity.empty()) {
    out += ", TLS (no client identity)";
  } else {
    out += ", TLS '" + Printable(r.client.identity) + "'";
  }
  if (!r.refused_identity.empty()) {
    out += ", refused " + r.refused_identity;
  }
  if (r.opened || !r.export_name.empty()) {
    out += ", export '" + Printable(r.export_name) + "'";
    if (r.opened && r.canonical_name != r.export_name) {
      out += " = '" + Printable(r.canonical_name) + "'";
    }
    if (!r.opened) out += " (not opened)";
  }
  if (r.end.empty()) return out + ", opened";
  const double secs = std::chrono::duration<double>(r.duration).count();
  char tail[64];
  std::snprintf(tail, sizeof(tail), " bytes read in %.3f s", secs);
  return out + ", " + std::to_string(r.bytes_read) + tail + ", ended: " + r.end;
}

Status RunServer(const ServerOptions& options, ExportProvider& provider) {
  Result<TlsMode> mode = ResolveTlsMode(options.tls);
  if (!mode.ok()) return mode.status();
  std::unique_ptr<TlsCredentials> creds;
  if (*mode != TlsMode::kOff) {
    Result<std::unique_ptr<TlsCredentials>> c =
        TlsCredentials::Load(options.tls);
    if (!c.ok()) return c.status();
    creds = std::move(*c);
    spdlog::debug("nbd: TLS {}: {}",
                  *mode == TlsMode::kRequire ? "required" : "offered",
                  creds->Describe());
  }

  asio::io_context io(1);
  asio::thread_pool pool(std::max<uint32_t>(1, options.worker_threads));
  ServerState server(options, provider, io, pool);
  server.tls_mode = *mode;
  server.tls = creds.get();

  std::vector<std::unique_ptr<Acceptor>> acceptors;
  Status s;
  std::string unix_path;
  const int passed = options.socket_activation ? ListenFds() : 0;
  if (passed > 0) {
    s = AdoptListenFds(io, passed, *mode, options.insecure, &acceptors);
  } else if (!options.unix_socket.empty()) {
    s = ListenUnix(io, options, &acceptors);
    if (s.ok()) unix_path = options.unix_socket;
  } else {
    s = ListenTcp(io, options, *mode, &acceptors);
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
      c->Close("server shutdown");
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
