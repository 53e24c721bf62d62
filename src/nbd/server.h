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
#include <optional>
#include <string>

#include "nbd/export.h"
#include "store/status.h"

namespace backy::nbd {

// TLS (NBD_OPT_STARTTLS): off, offered (`kOn`: clients choose), or
// required before any other option (`kRequire`, FORCEDTLS in the spec).
enum class TlsMode { kOff, kOn, kRequire };

struct TlsOptions {
  // Unset: kRequire once credentials are given, else kOff. kOn and kRequire
  // need credentials; credentials with kOff are an error (not a warning: a
  // server that looks protected in its config and is not is worse).
  std::optional<TlsMode> mode;
  // x509: a directory with server-cert.pem and server-key.pem, and
  // ca-cert.pem (and optionally ca-crl.pem) to verify client certificates,
  // the layout of qemu's tls-creds-x509 and nbdkit's --tls-certificates.
  std::string certificates_dir;
  // PSK: psktool's key file, "username:hexkey" lines. May be given together
  // with certificates_dir; the client's credentials pick which is used.
  std::string psk_file;
  // Require a client certificate signed by ca-cert.pem (x509 only).
  bool verify_peer = false;
  // A client that has not finished the TLS handshake this long after its
  // NBD_OPT_STARTTLS is dropped.
  std::chrono::seconds handshake_timeout{10};
};

// What the server knows about one connection, for the caller's log: given
// to ServerOptions::on_export_opened when the transmission phase starts, and
// to on_connection_end when the connection is gone.
struct ConnectionRecord {
  uint64_t id = 0;  // the server's number for the connection
  Client client;    // peer, TLS identity
  // A TLS credential offered and refused (the PSK username of a failed
  // handshake, or the subject of an unverified certificate): who tried.
  std::string refused_identity;
  std::string export_name;     // as the client asked for it
  std::string canonical_name;  // Export::CanonicalName(), or export_name
  bool opened = false;         // an export was opened for transmission
  uint64_t bytes_read = 0;     // data sent in successful READ replies
  std::chrono::steady_clock::duration duration{};  // since accept
  // How it ended: "client closed", "NBD_CMD_DISC", "NBD_OPT_ABORT", "idle
  // timeout", "server shutdown", "TLS handshake failed: ...", "error: ...".
  // Empty in on_export_opened.
  std::string end;
};

// One line for the log: "nbd[7] uid 0 pid 42, TLS psk 'alice', export
// 'last' = 'vm1/...', 1048576 bytes read in 1.2 s, ended: NBD_CMD_DISC".
// Peer-supplied strings are quoted with control characters escaped.
std::string DescribeConnection(const ConnectionRecord& r);

struct ServerOptions {
  // TCP address and port; used unless `unix_socket` is set or sockets were
  // passed by socket activation. `host` may be a name or an IPv4/IPv6
  // literal; every address it resolves to is bound.
  std::string host = "127.0.0.1";
  uint16_t port = 10809;
  // If not empty, listen on this Unix socket path instead of TCP. A stale
  // socket file at the path is replaced; the file is removed on shutdown.
  // The socket is created with `socket_mode` and group `socket_group` (or
  // the process's group when empty), never with wider permissions.
  std::string unix_socket;
  uint32_t socket_mode = 0600;
  std::string socket_group;
  // Without it, the server refuses to start on a TCP address that is not
  // loopback (127.0.0.0/8, ::1; a wildcard is not loopback) unless TLS is
  // required, and refuses a Unix socket mode with bits for others.
  bool insecure = false;
  TlsOptions tls;
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
  // Connection log (see ConnectionRecord); called on the I/O thread, so they
  // must not block. May be empty.
  std::function<void(const ConnectionRecord&)> on_export_opened;
  std::function<void(const ConnectionRecord&)> on_connection_end;
};

// Serves `provider` as described by `options` until SIGINT or SIGTERM.
// Returns OK after a signal-triggered clean shutdown, or an error if the
// TLS credentials cannot be loaded, the listen policy refuses the address
// (see `insecure`), or the listening sockets cannot be set up. While it runs,
// SIGINT and SIGTERM are caught by the server (they are back at their default
// action on return), and SIGPIPE is ignored from then on. REQUIRES: `provider`
// outlives the call and is safe for concurrent use.
Status RunServer(const ServerOptions& options, ExportProvider& provider);

}  // namespace backy::nbd
