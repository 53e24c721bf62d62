// nbd_test_server: serves test exports through backy::nbd::RunServer.
//
//   nbd_test_server [--socket PATH | --host H --port N] [--cow]
//                   [--tls off|on|require] [--tls-certificates DIR]
//                   [--tls-psk FILE] [--tls-verify-peer] [--insecure]
//                   [--tls-handshake-timeout SECONDS]
//                   [--log-connections]
//                   [--max-connections N] [--idle-timeout SECONDS]
//                   [--threads N] [--workers-only] [--debug]
//                   [--async-gate N] (GatedAsyncExport around each --file)
//                   (--workers-only and --async-gate before --file)
//                   --file NAME=PATH[=DESCRIPTION] ...   (raw file, read-only)
//                   --mem NAME=BYTES[:rw] ...            (zero-filled buffer)
//
// The first export is the default one. Exits 0 after SIGINT/SIGTERM.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "file_export.h"
#include "gated_async_export.h"
#include "nbd/mem_export.h"
#include "nbd/server.h"

namespace {

int Usage(const char* msg) {
  std::fprintf(stderr, "nbd_test_server: %s\n", msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using backy::nbd::FileExport;
  using backy::nbd::MemExport;
  backy::nbd::ServerOptions opts;
  opts.socket_activation = true;
  backy::nbd::StaticExportProvider provider;
  int exports = 0;
  bool workers_only = false;
  size_t async_gate = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "nbd_test_server: %s needs a value\n",
                     arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--socket") {
      opts.unix_socket = next();
    } else if (arg == "--host") {
      opts.host = next();
    } else if (arg == "--port") {
      opts.port = static_cast<uint16_t>(std::stoi(next()));
    } else if (arg == "--cow") {
      opts.cow = true;
    } else if (arg == "--tls") {
      const std::string m = next();
      if (m == "off") {
        opts.tls.mode = backy::nbd::TlsMode::kOff;
      } else if (m == "on") {
        opts.tls.mode = backy::nbd::TlsMode::kOn;
      } else if (m == "require") {
        opts.tls.mode = backy::nbd::TlsMode::kRequire;
      } else {
        return Usage("--tls off|on|require");
      }
    } else if (arg == "--tls-certificates") {
      opts.tls.certificates_dir = next();
    } else if (arg == "--tls-psk") {
      opts.tls.psk_file = next();
    } else if (arg == "--tls-verify-peer") {
      opts.tls.verify_peer = true;
    } else if (arg == "--tls-handshake-timeout") {
      opts.tls.handshake_timeout = std::chrono::seconds(std::stol(next()));
    } else if (arg == "--insecure") {
      opts.insecure = true;
    } else if (arg == "--log-connections") {
      auto log = [](const backy::nbd::ConnectionRecord& r) {
        spdlog::info("{}", backy::nbd::DescribeConnection(r));
      };
      opts.on_export_opened = log;
      opts.on_connection_end = log;
    } else if (arg == "--max-connections") {
      opts.max_connections = static_cast<uint32_t>(std::stoul(next()));
    } else if (arg == "--idle-timeout") {
      opts.idle_timeout = std::chrono::seconds(std::stol(next()));
    } else if (arg == "--threads") {
      opts.worker_threads = static_cast<uint32_t>(std::stoul(next()));
    } else if (arg == "--workers-only") {
      // Every read on the worker pool: no I/O-thread attempt.
      opts.inline_read_max = 0;
      workers_only = true;
    } else if (arg == "--async-gate") {
      async_gate = std::stoul(next());
    } else if (arg == "--debug") {
      spdlog::set_level(spdlog::level::debug);
    } else if (arg == "--file") {
      const std::string spec = next();
      const size_t eq = spec.find('=');
      if (eq == std::string::npos) return Usage("--file NAME=PATH");
      const std::string name = spec.substr(0, eq);
      std::string path = spec.substr(eq + 1);
      std::string desc = "raw file";
      if (const size_t eq2 = path.find('='); eq2 != std::string::npos) {
        desc = path.substr(eq2 + 1);
        path = path.substr(0, eq2);
      }
      auto exp = FileExport::Open(path, desc, !workers_only);
      if (!exp.ok()) return Usage(exp.status().ToString().c_str());
      if (async_gate > 0) {
        provider.Add(name, std::make_shared<backy::nbd::GatedAsyncExport>(
                               *exp, async_gate));
      } else {
        provider.Add(name, *exp);
      }
      ++exports;
    } else if (arg == "--mem") {
      const std::string spec = next();
      const size_t eq = spec.find('=');
      if (eq == std::string::npos) return Usage("--mem NAME=BYTES[:rw]");
      const std::string name = spec.substr(0, eq);
      std::string size = spec.substr(eq + 1);
      bool rw = false;
      if (size.size() > 3 && size.substr(size.size() - 3) == ":rw") {
        rw = true;
        size.resize(size.size() - 3);
      }
      provider.Add(name, std::make_shared<MemExport>(
                             std::vector<uint8_t>(std::stoull(size)), rw,
                             "in-memory buffer"));
      ++exports;
    } else {
      return Usage(("unknown argument " + arg).c_str());
    }
  }
  if (exports == 0) return Usage("no exports given");
  backy::Status s = backy::nbd::RunServer(opts, provider);
  if (!s.ok()) {
    std::fprintf(stderr, "nbd_test_server: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
