// The NBD server: the entry point `backy nbd-server` calls.
//
// RunServer() listens (TCP, a Unix socket, or sockets passed by systemd-style
// socket activation), speaks the fixed-newstyle NBD protocol to any number of
// clients on one Asio io_context thread, and runs export I/O on a small
// worker pool. It blocks until SIGINT or SIGTERM and then returns OK after
// closing every connection. It knows nothing of revisions: everything it
// serves comes from an ExportProvider (export.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "nbd/export.h"
#include "store/status.h"

namespace backy::nbd {

struct ServerOptions {
  // TCP address and port; used unless `unix_socket` is set or sockets were
  // passed by socket activation. `host` may be a name or an IPv4/IPv6
  // literal; every address it resolves to is bound.
  std::string host = "127.0.0.1";
  uint16_t port = 10809;
  // If not empty, listen on this Unix socket path instead of TCP. A stale
  // socket file at the path is replaced; the file is removed on shutdown.
  std::string unix_socket;
  // Honour LISTEN_PID/LISTEN_FDS (fds 3, 4, ...) when LISTEN_PID is this
  // process; then `host`, `port` and `unix_socket` are ignored.
  bool socket_activation = true;
  // Serve read-only exports writable through a private per-connection
  // copy-on-write overlay (CowExport), discarded on disconnect.
  bool cow = false;
  // Directory for the copy-on-write overlay files (default $TMPDIR or
  // /var/tmp).
  std::string cow_temp_dir;
  // Connections beyond this number are refused during the handshake.
  uint32_t max_connections = 64;
  // A connection with no request in flight for this long is closed;
  // zero disables the timeout.
  std::chrono::seconds idle_timeout{300};
  // Threads running Export reads and writes. Cold reads wait for the
  // disk here, so more threads than cores keep more disk reads in flight
  // (random reads at queue depth 32 need about that many).
  uint32_t worker_threads = 16;
  // Reads up to this length are first tried on the I/O thread with
  // Export::ReadNoWait(); what it cannot serve from memory goes to the
  // workers. Longer reads always go to the workers, so one large read does
  // not hold up every other connection. 0 disables the attempt.
  uint32_t inline_read_max = 1024 * 1024;
  // Requests a single connection may have in flight before the server
  // stops reading from it (back-pressure).
  uint32_t max_inflight_per_connection = 64;
  // ... and payload bytes (reads and writes): the server's memory for
  // replies is bounded by this times the number of connections (a single
  // larger request is still taken when nothing else is in flight).
  uint32_t max_inflight_bytes_per_connection = 8 * 1024 * 1024;
  // Called once all listening sockets are bound (before serving): lets the
  // caller print the address or signal readiness. May be empty.
  std::function<void()> on_ready;
};

// Serves `provider` as described by `options` until SIGINT or SIGTERM.
// Returns OK after a signal-triggered clean shutdown, or an error if the
// listening sockets cannot be set up. While it runs, SIGINT and SIGTERM are
// caught by the server (they are back at their default action on return),
// and SIGPIPE is ignored from then on.
// REQUIRES: `provider` outlives the call and is safe for concurrent use.
Status RunServer(const ServerOptions& options, ExportProvider& provider);

}  // namespace backy::nbd
