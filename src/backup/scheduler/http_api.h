// The scheduler's local control API: HTTP/1.1 over TCP (127.0.0.1:PORT) or
// a Unix socket, every request authenticated by "Authorization: Bearer
// TOKEN" (401 otherwise) except those for the public paths (GET /metrics
// when api.metrics-public is set). ApiServer accepts connections on the
// daemon's io_context and hands each authenticated request to a handler;
// ApiRequest is the blocking client `backy jobs` and `backy run` use.
// Boost.Beast and Asio errors are converted to Status in http_api.cc. ApiServer
// is used from the io_context's thread only. The token is never logged.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "backup/scheduler/config.h"
#include "store/status.h"

namespace boost::asio {
class io_context;
}

namespace backy::backup::scheduler {

struct ApiResponse {
  int status = 200;  // HTTP status code
  std::string body;  // JSON, unless content_type says otherwise
  std::string content_type = "application/json";
};

// An error answer: `status` with the body {"error":"MESSAGE"} and "\n".
ApiResponse ApiError(int status, std::string_view message);

// Called for each authenticated request, and for each request for a public
// path: method ("GET", "POST") and path ("/v1/status"). Runs on the
// io_context's thread.
using ApiHandler = std::function<ApiResponse(const std::string& method,
                                             const std::string& path)>;

class ApiServer {
 public:
  // Listens on `listen` ("HOST:PORT" or "unix:PATH") and starts accepting
  // on `ioc`. A stale socket file at PATH is replaced; anything else there
  // is InvalidArgument naming PATH (never removed), a socket someone still
  // listens on is Busy. The socket file is created 0600. Fails when the
  // address cannot be bound. Serves at most 64 connections at once (fewer
  // under a low RLIMIT_NOFILE), closing more at once; backs off when
  // accept fails; answers 431/413 to over-long headers/bodies (8 KiB /
  // 64 KiB, never buffering more); logs refused requests rate-limited.
  static Result<std::unique_ptr<ApiServer>> Start(boost::asio::io_context& ioc,
                                                  const std::string& listen,
                                                  std::string token,
                                                  ApiHandler handler);
  virtual ~ApiServer() = default;
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Replaces the token (after a config reload).
  virtual void SetToken(std::string token) = 0;
  // The paths (request targets, exactly) answered without a token; none
  // until this is called.
  virtual void SetPublicPaths(std::set<std::string> paths) = 0;
  // Stops accepting and removes the Unix socket file this server created
  // (not a file that replaced it). Connections being served finish on
  // their own (5 s to send the request, 5 s to read the answer).
  virtual void Stop() = 0;

 protected:
  ApiServer() = default;
};

// Sends one request to the API the config describes and returns the
// response (any HTTP status). IOError when the daemon cannot be reached.
Result<ApiResponse> ApiRequest(const ApiConfig& api, const std::string& method,
                               const std::string& path);

}  // namespace backy::backup::scheduler
