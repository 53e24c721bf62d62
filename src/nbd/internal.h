// Internal API of the NBD server, shared by server.cc (listening, signals),
// handshake.cc (option haggling) and transmission.cc (requests and
// replies); it includes Asio, so only those three include it (errors.h
// holds the Status -> NBD error mapping). Not for use outside src/nbd.
//
// Threading: everything here runs on the single io_context thread, except
// Connection::Execute(), which runs on a worker-pool thread and touches only
// the Request it is given and the immutable negotiated state. (The io
// thread calls ExecuteRead(r, nowait=true) itself first for short reads,
// then StartAsyncRead(r), whose completion may come from any thread and
// only posts to the io thread.)
#pragma once

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>,
// so <utility> must come first; keep clang-format from reordering.
// clang-format off
#include <utility>
#include <boost/asio.hpp>
#include <boost/asio/redirect_error.hpp>
// clang-format on
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "nbd/errors.h"  // NbdErrorFromStatus()
#include "nbd/export.h"
#include "nbd/protocol.h"
#include "nbd/server.h"
#include "nbd/tls.h"
#include "nbd/wire.h"
#include "store/status.h"

namespace backy::nbd {

namespace asio = boost::asio;
using Socket = asio::generic::stream_protocol::socket;
using Clock = std::chrono::steady_clock;

// Every I/O completion is turned into an error_code value, never an
// exception (the Asio 1.18 spelling of as_tuple(use_awaitable)).
inline auto Redirect(boost::system::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

// Server-wide limits.
inline constexpr uint32_t kMinBlockSize = 1;
inline constexpr uint32_t kPreferredBlockSize = 4096;
// kMaxBlockSize and kMaxOptionLength: see wire.h.
// BLOCK_STATUS replies carry at most this many descriptors.
inline constexpr size_t kMaxBlockDescriptors = 64 * 1024;
// The id of base:allocation in SET_META_CONTEXT replies.
inline constexpr uint32_t kBaseAllocationContextId = 1;

// ---- Shared server state (server.cc) --------------------------------------

class Connection;

struct ServerState {
  ServerState(const ServerOptions& o, ExportProvider& p, asio::io_context& i,
              asio::thread_pool& t)
      : options(o), provider(p), io(i), pool(t) {}

  const ServerOptions& options;
  ExportProvider& provider;
  asio::io_context& io;
  asio::thread_pool& pool;
  TlsMode tls_mode = TlsMode::kOff;     // options.tls.mode, resolved
  const TlsCredentials* tls = nullptr;  // set unless kOff
  bool stopping = false;                // SIGINT/SIGTERM received
  uint32_t active = 0;                  // connections counted against the limit
  uint64_t next_id = 0;                 // for log messages
  std::set<Connection*> connections;    // alive, for shutdown
};

// Buffers the receive side of a socket so that pipelined request headers
// cost one recv() per batch instead of one per request; after UseTls(),
// what it reads is decrypted by the session.
class Reader {
 public:
  explicit Reader(Socket& socket);
  // Reads exactly `n` bytes into `dst`; false on EOF or error.
  asio::awaitable<bool> Read(void* dst, size_t n);
  // Reads and discards `n` bytes; false on EOF or error.
  asio::awaitable<bool> Skip(uint64_t n);
  // Bytes received and not yet consumed.
  size_t Buffered() const { return end_ - begin_; }
  // From now on reads go through `tls` (which must outlive the Reader).
  // REQUIRES: Buffered() == 0 (plaintext sent before the handshake must not
  // pass for data sent under TLS).
  void UseTls(TlsSession* tls) { tls_ = tls; }
  // Why the last Read/Skip returned false: empty when the peer closed the
  // connection (or it was closed here), else the error.
  const std::string& error() const { return error_; }

 private:
  static constexpr size_t kCapacity = 64 * 1024;
  asio::awaitable<bool> Fill();
  // Receives 1 to `cap` bytes into `dst`.
  asio::awaitable<bool> ReceiveSome(uint8_t* dst, size_t cap, size_t* got);
  Socket& socket_;
  TlsSession* tls_ = nullptr;
  std::unique_ptr<uint8_t[]> buf_;
  size_t begin_ = 0;
  size_t end_ = 0;
  std::string error_;
};

// What the handshake agreed on, fixed for the transmission phase.
struct Negotiated {
  std::shared_ptr<Export> exp;
  std::string name;
  uint64_t size = 0;
  uint16_t transmission_flags = 0;
  bool structured = false;
  bool base_allocation = false;  // base:allocation selected for this export
};

// One piece of a reply: `len` bytes at `data`, or, when fd >= 0, `len`
// bytes of file `fd` at offset `off`, sent with sendfile(2) so they are not
// copied through the server (the kernel passes page references along a
// Unix socket).
struct ReplyPart {
  const uint8_t* data = nullptr;
  size_t len = 0;
  int fd = -1;
  uint64_t off = 0;
  uint8_t* copy_to = nullptr;  // file parts: their place in Request::data
};

// One request in the transmission phase: its header fields as decoded
// (wire.h), plus what serving it needs. Recycled through a free list so that
// steady-state serving does not allocate.
struct Request : RequestFields {
  uint32_t budget = 0;  // payload bytes counted in inflight_bytes_
  uint32_t served = 0;  // data bytes of a successful READ reply (for the log)

  // Payload buffer (WRITE data in, READ data out) of at least `n` bytes;
  // its capacity is kept across requests up to 256 KiB (ReleaseLargeBuffer
  // frees larger ones). Page-aligned: the kernel copies from the page cache
  // into it and from it into the socket, and both copies are measurably faster
  // (about a third, on this server's sequential reads) than into malloc's large
  // blocks, which start 16 bytes into a page.
  uint8_t* Buffer(size_t n);
  void ReleaseLargeBuffer();
  // Before reuse: drops the reply (and the pins of its files).
  void Reset();
  struct AlignedFree {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t[], AlignedFree> data;
  size_t capacity = 0;

  std::vector<ExportExtent> extents;  // block status scratch
  std::vector<uint8_t> header;        // encoded reply headers
  std::vector<ReplyPart> parts;       // the reply, ready to send
  std::vector<FileExtent> files;      // zero-copy data; pins its files
};

// How a write to the socket went (WriteSome()).
enum class WriteResult { kDone, kBlocked, kError };

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(ServerState& server, Socket socket, uint64_t id);
  ~Connection();

  // Runs the connection to the end: handshake, then transmission.
  static asio::awaitable<void> Run(std::shared_ptr<Connection> self);
  // Drops the connection (shutdown, idle timeout, an error); `why` is how
  // the connection ended, for the log, unless an earlier reason was given.
  // In-flight requests still complete and are recycled. Idempotent.
  void Close(std::string_view why);

 private:
  // Records how the connection ended; the first reason given wins.
  void SetEnd(std::string_view why);
  // SetEnd() for a failed Reader: the peer closed, or an error.
  void SetReadEnd();
  ConnectionRecord Record() const;

  // Writes parts[*first ...] until all are sent (kDone) or the socket is
  // full (kBlocked: wait for WriteWait(), call again with the same parts),
  // advancing *first and trimming the first unfinished part; plain or TLS.
  // kError with the reason in *err.
  WriteResult WriteSome(std::vector<ReplyPart>& parts, size_t* first,
                        std::string* err);
  WriteResult WriteTls(std::vector<ReplyPart>& parts, size_t* first,
                       std::string* err);
  // What to wait for after kBlocked.
  Socket::wait_type WriteWait() const;
  // Sends all of `parts` (handshake replies); false if the connection
  // failed.
  asio::awaitable<bool> SendAll(std::vector<ReplyPart> parts);

  // handshake.cc: option haggling; true when transmission should start.
  asio::awaitable<bool> Handshake();
  asio::awaitable<bool> SendOptionReply(uint32_t option, uint32_t type,
                                        std::span<const uint8_t> data);
  asio::awaitable<bool> SendOptionError(uint32_t option, uint32_t type,
                                        std::string_view message);
  asio::awaitable<bool> HandleInfoOrGo(uint32_t option,
                                       std::span<const uint8_t> data, bool* go);
  asio::awaitable<bool> HandleExportName(std::span<const uint8_t> data);
  asio::awaitable<bool> HandleMetaContext(uint32_t option,
                                          std::span<const uint8_t> data);
  asio::awaitable<bool> HandleList(std::span<const uint8_t> data);
  // NBD_OPT_STARTTLS: the ACK, then the TLS handshake; false if the
  // connection must end (a failed handshake cannot fall back to plaintext).
  asio::awaitable<bool> HandleStartTls(std::span<const uint8_t> data);
  asio::awaitable<Result<std::shared_ptr<Export>>> OpenExport(
      const std::string& name);
  uint16_t TransmissionFlags(const Export& exp) const;

  // transmission.cc
  asio::awaitable<void> Transmission();
  static asio::awaitable<void> WriteLoop(std::shared_ptr<Connection> self);
  static asio::awaitable<void> Watchdog(std::shared_ptr<Connection> self);
  // Checks a request once (ValidateRequest() with this connection's
  // state); returns 0 or the NBD error to answer with.
  uint32_t Validate(const Request& r, const char** why) const;
  void Dispatch(Request* r);
  // Runs on a worker thread: performs the I/O and encodes the reply.
  void Execute(Request* r);
  // Performs a read and encodes its reply. With `nowait` (on the io
  // thread) it uses Export::ReadNoWait() and returns false, encoding
  // nothing, when the export would block; otherwise it returns true.
  bool ExecuteRead(Request* r, bool nowait);
  // io thread: starts Export::ReadAsync() for a read whose only data run
  // (PlanRead) the export can fetch asynchronously and returns true; the
  // reply is encoded and queued on the io thread when the data is there.
  // False: nothing started, the read goes to a worker.
  bool StartAsyncRead(Request* r);
  // The runs of data and zeros a read's reply consists of, into
  // r->extents (one data run without structured replies).
  void PlanRead(Request* r);
  // Encodes the reply of a read whose data runs are in r's buffer or
  // r->files.
  void EncodeRead(Request* r);
  void ExecuteBlockStatus(Request* r);
  // Reply encoders (any thread; touch only `r`).
  void EncodeSimple(Request* r, uint32_t error);
  void EncodeError(Request* r, uint32_t error, std::string_view message);
  void EncodeStatusError(Request* r, const Status& s);
  // io thread: queue an encoded reply for the writer.
  void Enqueue(Request* r);
  // io thread: sends a reply at once if nothing else is being written (as
  // much as the socket takes without blocking) and queues the rest.
  void SendOrEnqueue(Request* r);
  Request* AllocRequest();
  void Recycle(Request* r);
  asio::awaitable<void> WaitForChange();
  void NotifyChange();

  ServerState& server_;
  Socket socket_;
  const uint64_t id_;
  Reader reader_;
  bool closed_ = false;
  bool counted_ = false;  // counted in server_.active
  bool refused_ = false;  // over the connection limit
  Clock::time_point last_activity_;
  const Clock::time_point start_;
  Client client_;  // who is at the other end (peer, TLS identity)

  // The connection log (ConnectionRecord).
  std::string end_;               // how it ended; first reason wins
  std::string refused_identity_;  // a TLS credential offered and refused
  uint64_t bytes_read_ = 0;

  // TLS (after NBD_OPT_STARTTLS).
  std::unique_ptr<TlsSession> tls_;
  bool tls_handshaking_ = false;
  asio::steady_timer tls_deadline_;
  // Replies under TLS (WriteTls): small parts are gathered into full
  // records in tls_staging_; a record GnuTLS could not send yet is retried
  // as it was (tls_pending_: staging or the start of a part).
  std::unique_ptr<uint8_t[]> tls_staging_;
  size_t tls_staging_len_ = 0;
  const uint8_t* tls_pending_ = nullptr;
  size_t tls_pending_len_ = 0;
  bool tls_pending_direct_ = false;  // points into parts[*first]
  bool tls_want_read_ = false;       // kBlocked waits for readability

  // Handshake state.
  bool no_zeroes_ = false;
  bool structured_ = false;
  bool meta_selected_ = false;    // base:allocation selected ...
  std::string meta_export_name_;  // ... for this export name
  Negotiated n_;

  // Transmission state (io thread only).
  bool reading_done_ = false;  // no more requests will be read
  bool write_failed_ = false;
  bool writing_ = false;         // WriteLoop has a write in progress
  uint32_t inflight_ = 0;        // allocated and not yet recycled
  uint64_t inflight_bytes_ = 0;  // their payload bytes (Request::budget)
  std::deque<Request*> queue_;   // encoded, waiting for the writer
  std::vector<std::unique_ptr<Request>> all_requests_;
  std::vector<Request*> free_;
  std::vector<ReplyPart> batch_parts_;
  // What the export can do, fixed when transmission starts (before any
  // request reaches a worker).
  bool inline_reads_ = false;  // try ReadNoWait() on the io thread
  bool async_reads_ = false;   // then ReadAsync(), on the io thread too
  bool zero_copy_ = false;     // ReadToFiles()
  std::vector<Request*> batch_;
  asio::steady_timer write_event_;   // wakes the writer
  asio::steady_timer change_event_;  // wakes the reader
  asio::steady_timer idle_timer_;
};

// Runs `fn` on the worker pool and resumes the calling coroutine on its
// executor with the result. `fn` must not throw.
template <typename T, typename F>
asio::awaitable<T> RunOnPool(asio::thread_pool& pool, F fn) {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                          void(T)>(
      [&pool, ex, fn = std::move(fn)](auto handler) mutable {
        auto work = asio::make_work_guard(ex);
        asio::post(pool, [handler = std::move(handler), fn = std::move(fn),
                          work = std::move(work)]() mutable {
          T result = fn();
          auto target = work.get_executor();
          asio::post(target, [handler = std::move(handler),
                              result = std::move(result)]() mutable {
            std::move(handler)(std::move(result));
          });
        });
      },
      asio::use_awaitable);
}

}  // namespace backy::nbd
