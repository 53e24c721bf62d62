// ChunkStore: content-addressed storage of chunks, named by their Digest.
//
// A chunk is at most 4 MiB of plain image data. It is written once and
// never modified; revisions refer to chunks by digest, so a chunk shared by
// many revisions is stored once. Every read checks the data against its
// hash: a mismatch is a Corruption error naming the digest and the file.
// All methods are safe for concurrent use by multiple threads.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "store/digest.h"
#include "store/status.h"

namespace backy::store {

struct PutResult {
  bool created = false;       // false: a chunk with this digest existed
  bool replaced = false;      // an existing chunk was rewritten (rewrite)
  uint64_t stored_bytes = 0;  // bytes written (0 when it existed)
};

// An open chunk, for many reads without finding, opening and parsing it
// again each time (an NBD server reading 4 KiB at random). Obtained from
// ChunkStore::Open(). Reads check every block hash, like ChunkStore::Read.
// Thread-safe: one reader may serve concurrent reads.
class ChunkReader {
 public:
  ChunkReader() = default;
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;
  virtual ~ChunkReader() = default;

  // Plain size of the chunk. Constant.
  virtual uint64_t PlainSize() const = 0;

  // Same contract as ChunkStore::Read() for this chunk.
  virtual Status Read(uint64_t offset, std::span<uint8_t> out) = 0;

  // Like Read(), but never waits for a disk: returns WouldBlock, with `out`
  // unspecified, when some of the stored bytes are not in memory (the page
  // cache) yet. For servers that answer from memory on their I/O thread and
  // hand only the rest to blocking workers. Default: always WouldBlock.
  virtual Status ReadNoWait(uint64_t offset, std::span<uint8_t> out) {
    (void)offset;
    (void)out;
    return Status::WouldBlock("reader cannot read without blocking");
  }

  // For sending raw data straight from the chunk file: checks the blocks
  // covering plain bytes [offset, offset + length) (reads and hashes them;
  // with `nowait` only from memory, else WouldBlock) and returns the offset in
  // FileDescriptor() where those plain bytes lie. NotSupported when a block
  // there is not raw or the store keeps no files. Default: NotSupported.
  virtual Result<uint64_t> CheckRawRange(uint64_t offset, uint64_t length,
                                         bool nowait) {
    (void)offset;
    (void)length;
    (void)nowait;
    return Status::NotSupported("chunk is not in a file");
  }
  // The open chunk file for CheckRawRange(), or -1. Valid while the reader
  // lives.
  virtual int FileDescriptor() const { return -1; }

  // True when block `block` is stored raw: reading part of it costs a read
  // of the block and a hash, no decoding, so callers need not cache it.
  // Default: false.
  virtual bool IsRawBlock(uint32_t block) const {
    (void)block;
    return false;
  }

  // The unit reads decode and check: plain bytes [i * BlockSize(),
  // (i + 1) * BlockSize()) form block i (the last one may be shorter).
  // A cache of decoded data should hold whole blocks. Constant.
  // Default: the whole chunk is one block.
  virtual uint32_t BlockSize() const {
    return static_cast<uint32_t>(std::max<uint64_t>(1, PlainSize()));
  }

  // Like Read(), but may return before the bytes arrive: calls `done`
  // exactly once with Read()'s result when `out` is filled (or not), from
  // any thread, possibly before ReadAsync() returns. `out` must stay valid,
  // and the reader alive, until then; `done` must not block. Default: a
  // synchronous Read(), then `done`.
  virtual void ReadAsync(uint64_t offset, std::span<uint8_t> out,
                         std::function<void(Status)> done) {
    done(Read(offset, out));
  }
  // True when ReadAsync() never waits for the store (it only starts the
  // read), so a server's I/O thread may call it. Constant. Default: false.
  virtual bool HasAsyncReads() const { return false; }

  // Hint that plain bytes [offset, offset + length) will be read soon: the
  // implementation may start fetching them (readahead) and returns at
  // once. The range is clipped to the chunk. Default: does nothing.
  virtual void Prefetch(uint64_t offset, uint64_t length) {
    (void)offset;
    (void)length;
  }
};

class ChunkStore {
 public:
  ChunkStore() = default;
  ChunkStore(const ChunkStore&) = delete;
  ChunkStore& operator=(const ChunkStore&) = delete;
  virtual ~ChunkStore() = default;

  // Stores `plain` under `digest` (REQUIRES: digest == Digest::Of(plain))
  // unless the chunk exists already — or, with `rewrite`, replaces an
  // existing chunk (after a revision was distrusted, a chunk file with the
  // right name may hold bad data). A chunk is durable before its name
  // appears (a rewrite replaces the old file atomically), so a crash never
  // leaves a partial chunk under its final name. Implementations may
  // commit chunks in groups: a chunk is readable, and durable, at the
  // latest after the next Sync(); until then Contains() may say false and
  // Get() NotFound, while Put() of the same digest still deduplicates.
  virtual Result<PutResult> Put(const Digest& digest,
                                std::span<const uint8_t> plain,
                                bool rewrite = false) = 0;

  // True when a chunk named `digest` exists. Does not read or check it.
  virtual Result<bool> Contains(const Digest& digest) = 0;

  // Reads the whole chunk into `out` (resized to its plain size) and
  // checks it. NotFound when missing, Corruption when damaged.
  virtual Status Get(const Digest& digest, std::vector<uint8_t>* out) = 0;

  // Reads out.size() bytes at `offset` within the chunk's plain data,
  // decoding only the blocks that cover the range, each checked
  // against its block hash. InvalidArgument when the range exceeds the
  // chunk. `out` is owned by the caller.
  virtual Status Read(const Digest& digest, uint64_t offset,
                      std::span<uint8_t> out) = 0;

  // Opens the chunk for repeated reads; its header and block table are
  // read and checked once, here. NotFound when missing, Corruption when the
  // header or block table is damaged (a damaged block is only found when it
  // is read). The store must outlive the reader. Whether a reader still
  // reads a chunk removed or quarantined after Open() depends on the store
  // (FileChunkStore's does: it holds the open file). Thread-safe. The
  // default implementation forwards each read to Read(digest, ...); stores
  // with a costlier lookup override it.
  virtual Result<std::shared_ptr<ChunkReader>> Open(const Digest& digest);

  // Plain size of the chunk, from its header.
  virtual Result<uint64_t> PlainSize(const Digest& digest) = 0;

  // Makes every chunk created by Put() so far durable and readable
  // (commits pending groups, fsyncs directories).
  virtual Status Sync() = 0;

  // Deletes a chunk. NotFound when missing.
  virtual Status Remove(const Digest& digest) = 0;

  // Moves a damaged chunk out of the way (never deletes it), so that the
  // next backup writes a fresh copy.
  virtual Status Quarantine(const Digest& digest) = 0;

  // Calls `fn` for every chunk in the store, in no particular order.
  virtual Status List(const std::function<void(const Digest&)>& fn) = 0;

  // A name for messages: the chunk's file path, "mem:<hex>", or
  // "rados:POOL[/NS]:OBJECT".
  virtual std::string ChunkName(const Digest& digest) const = 0;

  // Bytes the chunk takes in the store (its encoded size), for what a
  // purge frees. NotFound when missing. The default is the size of the
  // file named ChunkName(), for stores that keep a chunk per file.
  virtual Result<uint64_t> StoredSize(const Digest& digest);
};

namespace internal {
// The default ChunkReader: every call goes through the store by digest.
class ForwardingChunkReader final : public ChunkReader {
 public:
  ForwardingChunkReader(ChunkStore* store, const Digest& digest,
                        uint64_t plain_size)
      : store_(store), digest_(digest), plain_size_(plain_size) {}
  uint64_t PlainSize() const override { return plain_size_; }
  Status Read(uint64_t offset, std::span<uint8_t> out) override {
    return store_->Read(digest_, offset, out);
  }

 private:
  ChunkStore* const store_;
  const Digest digest_;
  const uint64_t plain_size_;
};
}  // namespace internal

inline Result<uint64_t> ChunkStore::StoredSize(const Digest& digest) {
  const std::string name = ChunkName(digest);
  struct stat st;
  if (::stat(name.c_str(), &st) != 0) {
    return Status::FromErrno(errno, "stat", name);
  }
  return static_cast<uint64_t>(st.st_size);
}

inline Result<std::shared_ptr<ChunkReader>> ChunkStore::Open(
    const Digest& digest) {
  auto size = PlainSize(digest);
  if (!size.ok()) return size.status();
  return std::shared_ptr<ChunkReader>(
      std::make_shared<internal::ForwardingChunkReader>(this, digest, *size));
}

}  // namespace backy::store
