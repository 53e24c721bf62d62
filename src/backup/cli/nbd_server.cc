// backy nbd-server: serve revisions as NBD exports.
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "backup/cli/command.h"
#include "backup/revision_export.h"
#include "nbd/server.h"

namespace backy::backup::cli {
namespace {

// "256M", "1G", "65536" → bytes.
Result<uint64_t> ParseSize(const std::string& s) {
  size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(s, &pos);
  } catch (...) {
    return Status::InvalidArgument("bad size '" + s + "'");
  }
  std::string unit = s.substr(pos);
  for (auto& c : unit)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB")) unit.resize(unit.size() - 2);
  if (unit.ends_with("B")) unit.pop_back();
  uint64_t mul = 1;
  if (unit == "K")
    mul = 1ull << 10;
  else if (unit == "M")
    mul = 1ull << 20;
  else if (unit == "G")
    mul = 1ull << 30;
  else if (!unit.empty())
    return Status::InvalidArgument("bad size unit in '" + s + "'");
  return static_cast<uint64_t>(v) * mul;
}

// The server's memory is the block cache (bounded by --cache-size) plus
// buffers that come and go: read replies and the 512 KiB blocks workers
// decode. glibc would keep freed large buffers in per-thread arenas (one
// per worker) and raise its mmap threshold to their size, so RSS grew past
// the cache by tens of MiB; a fixed threshold hands them back to the
// kernel when freed (measured: the cost is under 5 % of a 512 KiB decode).
void BoundHeapGrowth() {
  ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  ::mallopt(M_ARENA_MAX, 4);
}

// The server keeps chunk files open (one descriptor per chunk, up to a
// quarter of the limit): raise the soft limit to the hard one, as servers
// do, instead of reopening chunks under the common default of 1024.
void RaiseOpenFileLimit() {
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) {
    return;
  }
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 65536);
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    spdlog::debug("nbd-server: could not raise the open file limit");
  }
}

class NbdServerCommand final : public Command {
 public:
  std::string Name() const override { return "nbd-server"; }
  std::string Description() const override {
    return "Serve revisions as NBD exports (names: SPEC, or JOB/SPEC in a "
           "directory of repositories; empty name = last)";
  }
  void Setup(CLI::App* app) override {
    app->add_option("-H,--host", options_.host, "Address to listen on")
        ->capture_default_str();
    app->add_option("-p,--port", options_.port, "TCP port")
        ->capture_default_str();
    app->add_option("--socket", options_.unix_socket,
                    "Listen on this Unix socket instead of TCP");
    app->add_flag("--cow", options_.cow,
                  "Make exports writable through a private copy-on-write "
                  "overlay, discarded on disconnect; the repository is never "
                  "changed");
    app->add_option("--cache-size", cache_size_,
                    "Decompressed chunk blocks kept in memory (e.g. 256M, 1G)")
        ->capture_default_str();
    app->add_option("--max-connections", options_.max_connections,
                    "Connections served at once")
        ->capture_default_str();
    app->add_option("--idle-timeout", idle_timeout_,
                    "Seconds before an idle connection is closed (0: never)")
        ->capture_default_str();
    app->add_option("--threads", options_.worker_threads,
                    "Threads reading chunks from disk (reads of cached data "
                    "are answered without them)")
        ->capture_default_str();
  }
  Status Run(const GlobalOptions& global) override {
    RaiseOpenFileLimit();
    BoundHeapGrowth();
    auto cache = ParseSize(cache_size_);
    if (!cache.ok()) return cache.status();
    auto provider = RepositoryExports::Open(global.backupdir, *cache);
    if (!provider.ok()) return provider.status();
    options_.idle_timeout = std::chrono::seconds(idle_timeout_);
    options_.on_ready = [this] {
      if (std::getenv("LISTEN_FDS")) {
        spdlog::info(
            "nbd-server: serving on the sockets passed in (LISTEN_FDS)");
      } else if (!options_.unix_socket.empty()) {
        spdlog::info("nbd-server: serving on unix socket {}",
                     options_.unix_socket);
      } else {
        spdlog::info("nbd-server: serving on {}:{}", options_.host,
                     options_.port);
      }
    };
    return nbd::RunServer(options_, **provider);
  }

 private:
  nbd::ServerOptions options_;
  std::string cache_size_ = "256M";
  int64_t idle_timeout_ = 300;
};

}  // namespace

std::unique_ptr<Command> MakeNbdServerCommand() {
  return std::make_unique<NbdServerCommand>();
}

}  // namespace backy::backup::cli
