// Boost 1.74's Asio has no as_tuple; errors come back through
// redirect_error and are converted to Status here.
#include "backup/scheduler/http_api.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

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

class ServerImpl final : public ApiServer {
 public:
  ServerImpl(asio::io_context& ioc, Endpoint ep, std::string token,
             ApiHandler handler)
      : acceptor_(ioc),
        ep_(std::move(ep)),
        state_(std::make_shared<Shared>(Shared{std::move(token),
                                               std::move(handler)})) {}

  Status Listen() {
    error_code ec;
    if (!ep_.unix_path.empty()) ::unlink(ep_.unix_path.c_str());
    acceptor_.open(ep_.ep.protocol(), ec);
    if (!ec && ep_.unix_path.empty()) {
      acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) acceptor_.bind(ep_.ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return FromAsio(ec, "api: cannot listen",
                      ep_.unix_path.empty() ? "tcp" : ep_.unix_path);
    }
    if (!ep_.unix_path.empty()) ::chmod(ep_.unix_path.c_str(), 0660);
    asio::co_spawn(acceptor_.get_executor(), Accept(&acceptor_, state_),
                   asio::detached);
    return Status::OK();
  }

  void SetToken(std::string token) override { state_->token = std::move(token); }

  void Stop() override {
    error_code ec;
    acceptor_.close(ec);
    if (!ep_.unix_path.empty()) ::unlink(ep_.unix_path.c_str());
  }

  ~ServerImpl() override { Stop(); }

 private:
  struct Shared {
    std::string token;
    ApiHandler handler;
  };

  static asio::awaitable<void> Accept(asio::basic_socket_acceptor<Protocol>* acc,
                                      std::shared_ptr<Shared> state) {
    for (;;) {
      error_code ec;
      Protocol::socket sock = co_await acc->async_accept(
          asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acc->is_open()) co_return;
        spdlog::warn("api: accept: {}", ec.message());
        continue;
      }
      asio::co_spawn(acc->get_executor(), Serve(std::move(sock), state),
                     asio::detached);
    }
  }

  static asio::awaitable<void> Serve(Protocol::socket sock,
                                     std::shared_ptr<Shared> state) {
    auto sock_ptr = std::make_shared<Protocol::socket>(std::move(sock));
    // A slow or silent client is cut off after 10 s.
    asio::steady_timer deadline(sock_ptr->get_executor());
    deadline.expires_after(std::chrono::seconds(10));
    deadline.async_wait([weak = std::weak_ptr(sock_ptr)](error_code e) {
      if (e) return;
      if (auto s = weak.lock()) {
        error_code ignored;
        s->close(ignored);
      }
    });
    error_code ec;
    beast::flat_buffer buf;
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    co_await http::async_read(*sock_ptr, buf, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    const auto& req = parser.get();
    const std::string method(req.method_string());
    const std::string path(req.target());
    ApiResponse out;
    const std::string auth(req[http::field::authorization]);
    const std::string_view prefix = "Bearer ";
    if (state->token.empty() || !auth.starts_with(prefix) ||
        !SameToken(std::string_view(auth).substr(prefix.size()),
                   state->token)) {
      out = {401, "{\"error\":\"missing or wrong bearer token\"}\n"};
    } else {
      out = state->handler(method, path);
    }
    spdlog::info("api: {} {} {}", method, path, out.status);
    http::response<http::string_body> res{
        static_cast<http::status>(out.status), req.version()};
    res.set(http::field::server, "backy");
    res.set(http::field::content_type, "application/json");
    if (out.status == 401) {
      res.set(http::field::www_authenticate, "Bearer realm=\"backy\"");
    }
    res.keep_alive(false);
    res.body() = std::move(out.body);
    res.prepare_payload();
    co_await http::async_write(*sock_ptr, res,
                               asio::redirect_error(asio::use_awaitable, ec));
    sock_ptr->shutdown(asio::socket_base::shutdown_both, ec);
    deadline.cancel();
  }

  asio::basic_socket_acceptor<Protocol> acceptor_;
  Endpoint ep_;
  std::shared_ptr<Shared> state_;
};

}  // namespace

Result<std::unique_ptr<ApiServer>> ApiServer::Start(asio::io_context& ioc,
                                                    const std::string& listen,
                                                    std::string token,
                                                    ApiHandler handler) {
  auto ep = ParseListen(listen);
  if (!ep.ok()) return ep.status();
  auto server = std::make_unique<ServerImpl>(ioc, std::move(*ep),
                                             std::move(token),
                                             std::move(handler));
  Status s = server->Listen();
  if (!s.ok()) return s;
  return std::unique_ptr<ApiServer>(std::move(server));
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
    return FromAsio(ec, "cannot reach the scheduler's API (is 'backy "
                        "scheduler' running?)",
                    api.listen);
  }
  http::request<http::string_body> req{http::string_to_verb(method), path,
                                       11};
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
