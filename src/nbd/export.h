// Export and ExportProvider: what the NBD server serves, and how it finds it.
//
// An Export is a byte-addressable image of fixed size (a revision, a raw
// file, a buffer). The server knows nothing else about it: it validates every
// request at the protocol edge and then calls the I/O methods with in-range
// arguments from a pool of worker threads, so implementations may block on
// disk and decompression. The exceptions run on the I/O thread and must not
// block: ReadNoWait(), ReadAsync() and ReadToFiles(nowait=true), and
// BlockStatus() of an export whose CanReadNoWait() is true. An ExportProvider
// names the exports a client may list and open.
//
// Thread-safety: Export and ExportProvider methods may be called concurrently
// from several threads (see each method). Neither class can be copied.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace backy::nbd {

// One run of an export's block status ("base:allocation" in NBD terms).
struct ExportExtent {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool hole = false;  // not allocated in the backing store
  bool zero = false;  // known to read as all zeros

  uint64_t end() const { return offset + length; }
  bool operator==(const ExportExtent&) const = default;
};

// Bytes of an export that lie, checked and unchanging, in an open file:
// [offset, offset + length) of the export are [file_offset, file_offset +
// length) of `fd`. The server sends them with sendfile(2), so they are not
// copied through its memory. `pin` keeps `fd` open until they are sent.
struct FileExtent {
  uint64_t offset = 0;
  uint64_t length = 0;
  int fd = -1;
  uint64_t file_offset = 0;
  std::shared_ptr<const void> pin;
};

class Export {
 public:
  Export() = default;
  Export(const Export&) = delete;
  Export& operator=(const Export&) = delete;
  virtual ~Export() = default;

  // Size in bytes. Constant for the lifetime of the object.
  // Thread-safe.
  virtual uint64_t Size() const = 0;

  // Human-readable one-line description ("2024-06-01 12:00 daily, trusted")
  // sent with NBD_OPT_LIST and NBD_INFO_DESCRIPTION. May be empty.
  // Thread-safe.
  virtual std::string Description() const { return {}; }

  // The name this export is known by for good, whatever name the client
  // opened it by ("vm1/<revision id>" for "vm1/last"): sent as
  // NBD_INFO_NAME and written in the connection log. Empty means the name
  // the client gave. Constant for the lifetime of the object. Thread-safe.
  virtual std::string CanonicalName() const { return {}; }

  // True if the export refuses writes; the server then advertises READ_ONLY
  // and answers WRITE/WRITE_ZEROES/TRIM with EPERM itself, without calling
  // the write methods below. Constant for the lifetime of the object.
  virtual bool IsReadOnly() const { return true; }

  // True if several connections may use this export at once and see each
  // other's writes after FLUSH (NBD_FLAG_CAN_MULTI_CONN). Read-only exports
  // backed by immutable data should return true; an export with per-client
  // state (a copy-on-write overlay) must return false.
  virtual bool CanMultiConn() const { return IsReadOnly(); }

  // Fills `buf` with the bytes at [offset, offset + buf.size()).
  // REQUIRES: buf.size() > 0 and offset + buf.size() <= Size().
  // Thread-safe: called concurrently from worker threads, also for
  // overlapping ranges. `buf` is owned by the caller and valid only for the
  // duration of the call. On error, the content of `buf` is unspecified;
  // a Corruption or IOError status makes the server answer that one request
  // with EIO and keep serving.
  virtual Status Read(uint64_t offset, std::span<uint8_t> buf) = 0;

  // True if ReadNoWait() can succeed; only then does the server call it,
  // and BlockStatus(), on its I/O thread (an export whose BlockStatus()
  // takes locks that writers hold across disk I/O must say false).
  // Constant for the lifetime of the object. Default: false.
  virtual bool CanReadNoWait() const { return false; }

  // Like Read(), but called on the server's I/O thread, so it must never
  // block: it answers from memory (its caches, the page cache) or returns
  // WouldBlock, and the server then calls Read() from a worker. Serving warm
  // data without the hand-off to a worker and back saves two thread switches
  // per request. An export that implements it must answer BlockStatus()
  // without blocking too. Called only if CanReadNoWait().
  // REQUIRES: as for Read(). Thread-safe, like Read(). Default: always
  // WouldBlock.
  virtual Status ReadNoWait(uint64_t offset, std::span<uint8_t> buf) {
    (void)offset;
    (void)buf;
    return Status::WouldBlock("export reads only from workers");
  }

  // True if ReadAsync() can start reads; only then does the server call
  // it. Constant for the lifetime of the object. Default: false.
  virtual bool CanReadAsync() const { return false; }

  // Like ReadNoWait(), called on the I/O thread and never blocking, but for
  // data that must be fetched: starts the read and returns true, then calls
  // `done` exactly once, from any thread (possibly before returning), with
  // Read()'s result once `buf` is filled; or returns false, without calling
  // `done`, when it cannot start without blocking, and the server then calls
  // Read() from a worker. Lets a client's queue of reads of a remote store
  // be in flight at once, not one per worker. `buf` must stay valid, and
  // the export alive, until `done`; `done` must not block. Called only if
  // CanReadAsync(), after ReadNoWait() said WouldBlock. REQUIRES: as for
  // Read(). Thread-safe, like Read(). Default: false.
  virtual bool ReadAsync(uint64_t offset, std::span<uint8_t> buf,
                         std::function<void(Status)> done) {
    (void)offset;
    (void)buf;
    (void)done;
    return false;
  }

  // Appends to `*extents` (without clearing it) consecutive extents that
  // start exactly at `offset` and describe a prefix of at least one byte of
  // [offset, offset + length). The extents may describe less than the whole
  // range (the caller asks again for the rest) and must not extend past
  // offset + length. The default implementation reports one extent of data.
  // REQUIRES: length > 0 and offset + length <= Size().
  // Thread-safe, like Read(). Must be cheap compared to Read(): the server
  // calls it before every structured READ to send zero ranges as holes.
  virtual Status BlockStatus(uint64_t offset, uint64_t length,
                             std::vector<ExportExtent>* extents) {
    extents->push_back({offset, length, false, false});
    return Status::OK();
  }

  // True if ReadToFiles() is implemented; only then does the server call
  // it. Constant for the lifetime of the object. Default: false.
  virtual bool CanReadToFiles() const { return false; }

  // Optional zero-copy read: like ReadNoWait() (with `nowait`, on the I/O
  // thread) or Read() (without, on a worker), except that it may leave parts
  // of `buf` unfilled and describe them in `files` instead (appended in
  // order, each within the range). The file bytes must not change while
  // pinned: only exports over immutable files implement it. With `nowait`
  // it must not block either; WouldBlock then sends the request to a worker,
  // which calls Read(). The server calls it only if CanReadToFiles() and
  // CanReadNoWait() are both true. REQUIRES: as for Read(). Thread-safe,
  // like Read(). Default: NotSupported.
  virtual Status ReadToFiles(uint64_t offset, std::span<uint8_t> buf,
                             bool nowait, std::vector<FileExtent>* files) {
    (void)offset;
    (void)buf;
    (void)nowait;
    (void)files;
    return Status::NotSupported("export has no zero-copy reads");
  }

  // Hint that [offset, offset + length) will be read soon (NBD_CMD_CACHE).
  // REQUIRES: range within Size(). Thread-safe. Default: does nothing.
  virtual Status Cache(uint64_t offset, uint64_t length) {
    (void)offset;
    (void)length;
    return Status::OK();
  }

  // Writes `data` at `offset`. Only called when IsReadOnly() is false.
  // REQUIRES: data.size() > 0 and offset + data.size() <= Size().
  // Thread-safe: may run concurrently with reads and other writes (the
  // client must not have overlapping writes in flight, but the
  // implementation must keep its own structures consistent). `data` is
  // owned by the caller and valid only for the duration of the call.
  virtual Status Write(uint64_t offset, std::span<const uint8_t> data) {
    (void)offset;
    (void)data;
    return Status::NotSupported("export is read-only");
  }

  // Makes [offset, offset + length) read as zeros. Same rules as Write().
  virtual Status WriteZeroes(uint64_t offset, uint64_t length) {
    (void)offset;
    (void)length;
    return Status::NotSupported("export is read-only");
  }

  // Says that [offset, offset + length) is no longer needed; afterwards its
  // content is unspecified until written again. Same rules as Write().
  virtual Status Trim(uint64_t offset, uint64_t length) {
    (void)offset;
    (void)length;
    return Status::NotSupported("export is read-only");
  }

  // Makes every completed write durable. Thread-safe. Called for
  // NBD_CMD_FLUSH and after writes with FUA; default does nothing.
  virtual Status Flush() { return Status::OK(); }
};

// Who is asking: what an ExportProvider may decide access on, and what the
// server logs about a connection.
struct Client {
  // "127.0.0.1:41234", "[::1]:41234", or "uid 1000 pid 4242" for a Unix
  // socket peer (SO_PEERCRED).
  std::string peer;
  // The TLS identity: the PSK username, or the common name of a verified
  // client certificate. Empty without TLS, or with TLS but no identity
  // (x509 without --tls-verify-peer).
  std::string identity;
  bool tls = false;  // the connection is encrypted
};

// What NBD_OPT_LIST shows for one export.
struct ExportInfo {
  std::string name;
  std::string description;
};

class ExportProvider {
 public:
  ExportProvider() = default;
  ExportProvider(const ExportProvider&) = delete;
  ExportProvider& operator=(const ExportProvider&) = delete;
  virtual ~ExportProvider() = default;

  // Lists the exports `client` may open, in display order.
  // Thread-safe: called from worker threads, possibly concurrently with
  // OpenExport() and with itself.
  virtual Result<std::vector<ExportInfo>> ListExports(const Client& client) = 0;

  // Opens the export called `name` for `client`; the empty name means the
  // default export. Returns NotFound (with a message naming `name`) if there
  // is no such export, or if `client` may not see it (the same answer, so
  // that it learns nothing of exports it may not read); any other error is
  // reported to the client as "export not available" with the status message.
  // The returned export stays valid for as long as the caller holds the
  // pointer, even if the provider's set of exports changes meanwhile. Each
  // connection opens its own; opening the same name twice may return the same
  // object. Thread-safe, like ListExports().
  virtual Result<std::shared_ptr<Export>> OpenExport(std::string_view name,
                                                     const Client& client) = 0;
};

}  // namespace backy::nbd
