// backy nbd-server: serve revisions as NBD exports.
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <optional>

#include "backup/cli/command.h"
#include "backup/export_authz.h"
#include "backup/revision_export.h"
#include "nbd/server.h"
#include "store/file_io.h"

namespace backy::backup::cli {
namespace {

// Largest --cache-size: far more memory than a backup host has.
constexpr uint64_t kMaxCacheSize = uint64_t{1} << 40;

// "256M", "1G", "65536" → bytes: digits, then K, M, G or T (optionally
// followed by "iB" or "B"; powers of 1024). No sign, no spaces, at most
// kMaxCacheSize.
Result<uint64_t> ParseSize(const std::string& s) {
  size_t pos = 0;
  uint64_t v = 0;
  while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
    v = v * 10 + static_cast<uint64_t>(s[pos] - '0');
    v = std::min(v, kMaxCacheSize + 1);  // saturate: never wraps
    ++pos;
  }
  if (pos == 0) {
    return Status::InvalidArgument("'" + s +
                                   "' is not a size (digits, then K, M, G or "
                                   "T)");
  }
  std::string unit = s.substr(pos);
  for (auto& c : unit)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB")) {
    unit.resize(unit.size() - 2);
  } else if (unit.ends_with("B")) {
    unit.pop_back();
  }
  unsigned shift = 0;
  if (unit == "K") {
    shift = 10;
  } else if (unit == "M") {
    shift = 20;
  } else if (unit == "G") {
    shift = 30;
  } else if (unit == "T") {
    shift = 40;
  } else if (!unit.empty()) {
    return Status::InvalidArgument("bad size unit in '" + s +
                                   "' (K, M, G or T)");
  }
  if (v > (kMaxCacheSize >> shift)) {
    return Status::InvalidArgument("size '" + s + "' is more than 1T");
  }
  return v << shift;
}

// A CLI11 check of a SIZE option, with ParseSize's message.
CLI::Validator SizeValidator() {
  return CLI::Validator(
      [](std::string& v) {
        auto size = ParseSize(v);
        return size.ok() ? std::string() : size.status().Message();
      },
      "SIZE");
}

// "0660" -> 0660: octal digits only, at most 0777.
Result<uint32_t> ParseMode(const std::string& s) {
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '7') break;
    v = v * 8 + static_cast<uint32_t>(c - '0');
    if (v > 0777) break;
  }
  if (s.empty() || s.size() > 4 || v > 0777 ||
      s.find_first_not_of("01234567") != std::string::npos) {
    return Status::InvalidArgument("'" + s +
                                   "' is not an octal mode (0000 to 0777)");
  }
  return v;
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
                    "Decompressed chunk blocks kept in memory (e.g. 256M, 1G; "
                    "0 to 1T)")
        ->capture_default_str()
        ->check(SizeValidator());
    app->add_option("--disk-cache-size", disk_cache_size_,
                    "Decompressed chunk blocks kept beyond --cache-size in "
                    "an unnamed file, served from the page cache (0: none; "
                    "up to 1T)")
        ->capture_default_str()
        ->check(SizeValidator());
    app->add_option("--disk-cache-dir", disk_cache_dir_,
                    "Directory of the --disk-cache-size file (default: "
                    "$TMPDIR, else /var/tmp)");
    app->add_option("--max-connections", options_.max_connections,
                    "Connections served at once")
        ->capture_default_str()
        ->check(CLI::Range(1u, 100000u));
    app->add_option("--idle-timeout", idle_timeout_,
                    "Seconds before an idle connection is closed (0: never)")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{0}, int64_t{365} * 24 * 3600));
    app->add_option("--threads", options_.worker_threads,
                    "Threads reading chunks from disk (reads of cached data "
                    "are answered without them)")
        ->capture_default_str()
        ->check(CLI::Range(1u, 1024u));
    app->add_option("--tls", tls_mode_,
                    "off, on (clients choose) or require (default once "
                    "credentials are given, else off)")
        ->check(CLI::IsMember({"off", "on", "require"}));
    app->add_option("--tls-certificates", options_.tls.certificates_dir,
                    "x509: DIR with server-cert.pem, server-key.pem and "
                    "ca-cert.pem (for --tls-verify-peer)");
    app->add_option("--tls-psk", options_.tls.psk_file,
                    "PSK: psktool's key FILE of username:hexkey lines");
    app->add_flag("--tls-verify-peer", options_.tls.verify_peer,
                  "Require a client certificate signed by ca-cert.pem");
    app->add_flag("--insecure", options_.insecure,
                  "Allow a non-loopback address without TLS required, and a "
                  "socket mode with bits for others");
    app->add_option("--socket-mode", socket_mode_,
                    "Mode of the --socket file, octal (default 0600)")
        ->check(CLI::Validator(
            [](std::string& v) {
              return ParseMode(v).ok() ? std::string()
                                       : ParseMode(v).status().Message();
            },
            "OCTAL"));
    app->add_option("--socket-group", options_.socket_group,
                    "Group of the --socket file (e.g. with --socket-mode "
                    "0660)");
    app->add_option("--authz", authz_file_,
                    "YAML FILE: which jobs each TLS identity may read "
                    "(identity: [job, ...] or \"*\"); others see nothing")
        // An empty name must not quietly mean "no --authz": everyone.
        ->check(CLI::Validator(
            [](std::string& v) {
              return v.empty() ? std::string("empty, give a FILE")
                               : std::string();
            },
            "FILE"));
  }
  Status Run(const GlobalOptions& global) override {
    RaiseOpenFileLimit();
    BoundHeapGrowth();
    auto cache = ParseSize(cache_size_);
    if (!cache.ok()) return cache.status();
    if (tls_mode_ == "off") options_.tls.mode = nbd::TlsMode::kOff;
    if (tls_mode_ == "on") options_.tls.mode = nbd::TlsMode::kOn;
    if (tls_mode_ == "require") options_.tls.mode = nbd::TlsMode::kRequire;
    auto mode = ParseMode(socket_mode_);
    if (!mode.ok()) return mode.status();
    options_.socket_mode = *mode;
    // The connection log: who read what, at info level.
    options_.on_export_opened = [](const nbd::ConnectionRecord& r) {
      spdlog::info("{}", nbd::DescribeConnection(r));
    };
    options_.on_connection_end = [](const nbd::ConnectionRecord& r) {
      spdlog::info("{}", nbd::DescribeConnection(r));
    };
    std::optional<ExportAuthz> authz;
    if (!authz_file_.empty()) {
      Status s = CheckAuthzUsable();
      if (!s.ok()) return s;
      auto loaded = ExportAuthz::Load(authz_file_);
      if (!loaded.ok()) return loaded.status();
      authz = std::move(*loaded);
    }
    auto disk_cache = ParseSize(disk_cache_size_);
    if (!disk_cache.ok()) return disk_cache.status();
    std::shared_ptr<BlockFile> block_file;
    if (*disk_cache > 0) {
      auto f = BlockFile::Create(
          disk_cache_dir_.empty() ? TempDirectory() : disk_cache_dir_,
          *disk_cache);
      if (f.ok()) {
        block_file = std::move(*f);
      } else if (!disk_cache_dir_.empty()) {
        return f.status().WithContext("--disk-cache-dir");
      } else {
        // The default place: a cache is worth a warning, not a refusal.
        spdlog::warn("nbd-server: no disk cache: {}", f.status().ToString());
      }
    }
    auto repos = RepositoryExports::Open(
        global.backupdir, *cache, std::move(block_file), global.repository);
    if (!repos.ok()) return repos.status();
    // Names are JOB/SPEC only in a directory of repositories; one
    // repository has no jobs to grant.
    if (authz && (*repos)->single_repository()) {
      return Status::InvalidArgument(
          "--authz grants jobs, but BACKUPDIR is a single repository (give "
          "the directory of repositories)",
          global.backupdir);
    }
    std::unique_ptr<nbd::ExportProvider> provider = std::move(*repos);
    if (authz) {
      spdlog::info("nbd-server: --authz {}: {} TLS identities", authz_file_,
                   authz->identity_count());
      provider = std::make_unique<AuthorizedExports>(std::move(provider),
                                                     std::move(*authz));
    }
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
    return nbd::RunServer(options_, *provider);
  }

 private:
  // --authz decides by TLS identity: refused where no client could have
  // one, rather than starting a server on which nobody sees anything.
  Status CheckAuthzUsable() const {
    const nbd::TlsOptions& tls = options_.tls;
    const bool credentials =
        !tls.certificates_dir.empty() || !tls.psk_file.empty();
    if (tls.mode == nbd::TlsMode::kOff || !credentials) {
      return Status::InvalidArgument(
          "--authz needs TLS: clients are told apart by their TLS identity "
          "(give --tls-psk, or --tls-certificates with --tls-verify-peer)");
    }
    if (tls.psk_file.empty() && !tls.verify_peer) {
      return Status::InvalidArgument(
          "--authz needs TLS identities: x509 certificates give none "
          "without --tls-verify-peer (add it, or give --tls-psk)");
    }
    return Status::OK();
  }

  nbd::ServerOptions options_;
  std::string tls_mode_;    // empty: the default (see nbd::TlsOptions)
  std::string authz_file_;  // --authz; empty: every client sees everything
  std::string socket_mode_ = "0600";
  std::string cache_size_ = "256M";
  std::string disk_cache_size_ = "4G";
  std::string disk_cache_dir_;
  int64_t idle_timeout_ = 300;
};

}  // namespace

std::unique_ptr<Command> MakeNbdServerCommand() {
  return std::make_unique<NbdServerCommand>();
}

}  // namespace backy::backup::cli
