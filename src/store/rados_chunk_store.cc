#include "store/rados_chunk_store.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <string_view>
#include <tuple>
#include <utility>

namespace backy::store {

namespace {

// The first read of Open(): the header and the block table of every chunk
// the encoder writes (256 blocks of 16 KiB), so the table needs a second
// read only for chunks of unusual block sizes.
constexpr size_t kHeadReadSize = 8 * 1024;
// The read of Get(): a whole chunk as the encoder writes it, in one round
// trip; larger (odd but valid) objects take a second read.
constexpr uint64_t kGetReadSize =
    kChunkHeaderSize + kBlockEntrySize * (kMaxChunkSize / kChunkBlockSize) +
    kMaxChunkSize;
// Quarantine copies an object in pieces of this size.
constexpr uint64_t kCopyPieceSize = 4 << 20;

constexpr std::string_view kHexDigits = "0123456789abcdef";

using Calls = std::atomic<uint64_t>;

Status MissingChunk(const Digest& digest, const std::string& name) {
  return Status::NotFound("chunk " + digest.Hex() + " is missing", name);
}

Status TooLarge(uint64_t size, const std::string& name) {
  return Status::Corruption("chunk object of " + std::to_string(size) +
                                " bytes is larger than a chunk can be",
                            name);
}

// One round trip: the object's size and its first `len` bytes.
Status StatAndRead(rados_ioctx_t io, Calls& calls, const std::string& oid,
                   uint8_t* buf, size_t len, uint64_t* size, size_t* bytes_read,
                   const std::string& name) {
  rados_read_op_t op = rados_create_read_op();
  time_t mtime = 0;
  int stat_rval = 0, read_rval = 0;
  rados_read_op_stat(op, size, &mtime, &stat_rval);
  rados_read_op_read(op, 0, len, reinterpret_cast<char*>(buf), bytes_read,
                     &read_rval);
  ++calls;
  int r = rados_read_op_operate(op, io, oid.c_str(), 0);
  rados_release_read_op(op);
  if (r >= 0) r = stat_rval < 0 ? stat_rval : read_rval;
  if (r < 0) return RadosError(r, "reading chunk object", name);
  return Status::OK();
}

// What a read of `len` bytes at `offset` that returned `n` means: a shorter
// object is Corruption (it changed since its table was read, or lies about
// its size).
Status ReadResult(int n, size_t len, uint64_t offset, const std::string& name) {
  if (n < 0) return RadosError(n, "reading chunk object", name);
  if (static_cast<size_t>(n) != len) {
    return Status::Corruption("chunk object ends at " +
                                  std::to_string(offset + n) + " of " +
                                  std::to_string(offset + len) + " bytes",
                              name);
  }
  return Status::OK();
}

// Reads exactly `len` bytes at `offset` (ReadResult).
Status ReadExactly(rados_ioctx_t io, Calls& calls, const std::string& oid,
                   uint8_t* buf, size_t len, uint64_t offset,
                   const std::string& name) {
  ++calls;
  const int n =
      rados_read(io, oid.c_str(), reinterpret_cast<char*>(buf), len, offset);
  return ReadResult(n, len, offset, name);
}

// The one place every reader of a chunk object (Open, PlainSize) reads and
// checks its header and block table, against the object's size, so no
// later read can run past the object or allocate more than it holds.
Result<ChunkLayout> ReadChunkLayout(rados_ioctx_t io, Calls& calls,
                                    const std::string& oid,
                                    const Digest& digest,
                                    const std::string& name) {
  std::vector<uint8_t> head(kHeadReadSize);
  uint64_t size = 0;
  size_t got = 0;
  Status s =
      StatAndRead(io, calls, oid, head.data(), head.size(), &size, &got, name);
  if (s.IsNotFound()) return MissingChunk(digest, name);
  if (!s.ok()) return s;
  if (size > RadosChunkStore::kMaxObjectSize) return TooLarge(size, name);
  if (got < kChunkHeaderSize) {
    return Status::Corruption("chunk object too short for its header", name);
  }
  auto header = ParseChunkHeader({head.data(), kChunkHeaderSize}, name);
  if (!header.ok()) return header.status();
  const size_t prefix_size = ChunkPrefixSize(header->block_count);
  if (size < prefix_size) {
    return Status::Corruption("chunk object too short for its block table",
                              name);
  }
  if (prefix_size > got) {
    head.resize(prefix_size);
    s = ReadExactly(io, calls, oid, head.data(), prefix_size, 0, name);
    if (!s.ok()) return s;
  }
  auto layout = ParseChunkLayout({head.data(), prefix_size}, name);
  if (!layout.ok()) return layout.status();
  s = CheckChunkFileSize(*layout, size, name);
  if (!s.ok()) return s;
  if (layout->header.digest != digest) {
    return Status::Corruption("chunk object holds the wrong digest", name);
  }
  return layout;
}

class RadosChunkReader final
    : public ChunkReader,
      public std::enable_shared_from_this<RadosChunkReader> {
 public:
  RadosChunkReader(std::shared_ptr<RadosPool> pool, Calls* calls,
                   std::string oid, ChunkLayout layout, std::string name)
      : pool_(std::move(pool)),
        calls_(calls),
        oid_(std::move(oid)),
        layout_(std::move(layout)),
        name_(std::move(name)) {}

  uint64_t PlainSize() const override { return layout_.header.plain_size; }
  uint32_t BlockSize() const override { return layout_.header.block_size; }
  bool IsRawBlock(uint32_t block) const override {
    return block < layout_.blocks.size() &&
           layout_.blocks[block].codec == BlockCodec::kRaw;
  }

  Status Read(uint64_t offset, std::span<uint8_t> out) override {
    const uint64_t plain = layout_.header.plain_size;
    if (offset > plain || out.size() > plain - offset) {
      return Status::InvalidArgument("read beyond the end of chunk", name_);
    }
    if (out.empty()) return Status::OK();
    // One round trip for just the stored blocks that cover the range; the
    // table bounds their size by the object's.
    auto [begin, end] = StoredRange(layout_, offset, out.size());
    std::unique_ptr<uint8_t[]> stored(new uint8_t[end - begin]);
    Status s = ReadExactly(pool_->io(), *calls_, oid_, stored.get(),
                           end - begin, begin, name_);
    if (s.IsNotFound()) {
      return Status::NotFound("chunk was removed while open", name_);
    }
    if (!s.ok()) return s;
    return DecodeRange(layout_, begin, {stored.get(), end - begin}, offset, out,
                       name_);
  }

  // The same round trip as Read(), with rados_aio_read. The blocks are
  // decoded and checked in librados' completion thread: for the 16 KiB
  // blocks a random read fetches that costs microseconds, far less than a
  // hand-off to another thread would.
  bool HasAsyncReads() const override { return true; }
  void ReadAsync(uint64_t offset, std::span<uint8_t> out,
                 std::function<void(Status)> done) override {
    const uint64_t plain = layout_.header.plain_size;
    if (offset > plain || out.size() > plain - offset) {
      done(Status::InvalidArgument("read beyond the end of chunk", name_));
      return;
    }
    if (out.empty()) {
      done(Status::OK());
      return;
    }
    auto op = std::make_unique<AsyncRead>();
    op->reader = shared_from_this();
    op->offset = offset;
    op->out = out;
    op->done = std::move(done);
    std::tie(op->begin, op->end) = StoredRange(layout_, offset, out.size());
    op->stored.reset(new uint8_t[op->end - op->begin]);
    rados_completion_t c = nullptr;
    int r = rados_aio_create_completion2(op.get(), &OnReadComplete, &c);
    if (r >= 0) {
      ++*calls_;
      r = rados_aio_read(pool_->io(), oid_.c_str(), c,
                         reinterpret_cast<char*>(op->stored.get()),
                         op->end - op->begin, op->begin);
      if (r >= 0) {
        op.release();  // OnReadComplete owns it now
        return;
      }
      rados_aio_release(c);
    }
    op->done(RadosError(r, "starting a read of chunk object", name_));
  }

 private:
  // One rados_aio_read in flight; owns its buffer and keeps the reader.
  struct AsyncRead {
    std::shared_ptr<RadosChunkReader> reader;
    uint64_t offset = 0;
    std::span<uint8_t> out;
    std::function<void(Status)> done;
    uint64_t begin = 0, end = 0;  // the stored bytes read
    std::unique_ptr<uint8_t[]> stored;
  };

  static void OnReadComplete(rados_completion_t c, void* arg) {
    std::unique_ptr<AsyncRead> op(static_cast<AsyncRead*>(arg));
    const int n = rados_aio_get_return_value(c);
    rados_aio_release(c);
    const RadosChunkReader& self = *op->reader;
    Status s = ReadResult(n, op->end - op->begin, op->begin, self.name_);
    if (s.IsNotFound()) {
      s = Status::NotFound("chunk was removed while open", self.name_);
    }
    if (s.ok()) {
      s = DecodeRange(self.layout_, op->begin,
                      {op->stored.get(), op->end - op->begin}, op->offset,
                      op->out, self.name_);
    }
    op->done(std::move(s));
  }

  const std::shared_ptr<RadosPool> pool_;
  Calls* const calls_;  // the store's, which outlives its readers
  const std::string oid_;
  const ChunkLayout layout_;
  const std::string name_;
};

}  // namespace

RadosChunkStore::RadosChunkStore(std::shared_ptr<RadosPool> pool,
                                 std::string prefix,
                                 CompressionOptions compression)
    : pool_(std::move(pool)),
      prefix_(std::move(prefix)),
      compression_(compression) {}

RadosChunkStore::~RadosChunkStore() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return in_flight_.empty(); });
  ReapLocked();
  spdlog::debug("rados: chunks of {}: {} librados calls",
                pool_->ObjectName(prefix_), calls_.load());
}

std::string RadosChunkStore::ChunkOid(const Digest& digest) const {
  return prefix_ + "chunk/" + digest.Hex();
}

std::string RadosChunkStore::QuarantineOid(const Digest& digest) const {
  return prefix_ + "quarantine/" + digest.Hex();
}

std::string RadosChunkStore::ChunkName(const Digest& digest) const {
  return "rados:" + pool_->ObjectName(ChunkOid(digest));
}

// ------------------------------------------------------------------ writes

Result<PutResult> RadosChunkStore::Put(const Digest& digest,
                                       std::span<const uint8_t> plain,
                                       bool rewrite) {
  // Claim the digest before looking for the object: a second Put() of it,
  // from any thread, then returns at once instead of finding the object
  // absent and writing it again, so `created` is true for exactly one.
  InFlight* w = nullptr;
  {
    std::lock_guard<std::mutex> l(mu_);
    ReapLocked();
    auto [it, claimed] = in_flight_.try_emplace(digest);
    if (!claimed) return PutResult{};  // being written just now
    it->second = std::make_unique<InFlight>();
    w = it->second.get();
  }
  w->store = this;
  w->digest = digest;
  w->oid = ChunkOid(digest);
  uint64_t size = 0;
  time_t mtime = 0;
  ++calls_;
  const int r = rados_stat(pool_->io(), w->oid.c_str(), &size, &mtime);
  if (r < 0 && r != -ENOENT) {
    Abandon(digest);
    return RadosError(r, "looking for chunk " + digest.Hex(),
                      ChunkName(digest));
  }
  const bool exists = r == 0;
  if (exists && !rewrite) {
    Abandon(digest);
    return PutResult{};
  }
  // A new chunk is created exclusively: if another process made it since
  // the stat, the object there is a complete chunk of the same digest and
  // is kept. A rewrite replaces the object whole (write_full is atomic).
  w->exclusive = !exists;
  ThreadChunkEncoder(compression_).Encode(digest, plain, &w->encoded);
  const uint64_t bytes = w->encoded.size();
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] {
      return submitted_ == 0 || (submitted_ < kMaxInFlight &&
                                 submitted_bytes_ + bytes <= kMaxInFlightBytes);
    });
    ++submitted_;
    submitted_bytes_ += bytes;
  }
  w->op = rados_create_write_op();
  if (w->exclusive) {
    rados_write_op_create(w->op, LIBRADOS_CREATE_EXCLUSIVE, nullptr);
  }
  rados_write_op_write_full(
      w->op, reinterpret_cast<const char*>(w->encoded.data()), bytes);
  int rc = rados_aio_create_completion2(w, OnWriteComplete, &w->completion);
  if (rc == 0) {
    ++calls_;
    rc = rados_aio_write_op_operate(w->op, pool_->io(), w->completion,
                                    w->oid.c_str(), nullptr, 0);
  }
  if (rc < 0) {
    {
      std::lock_guard<std::mutex> l(mu_);
      --submitted_;
      submitted_bytes_ -= bytes;
    }
    Abandon(digest);
    return RadosError(rc, "writing chunk " + digest.Hex(), ChunkName(digest));
  }
  PutResult result;
  result.created = !exists;
  result.replaced = exists;
  result.stored_bytes = bytes;
  return result;
}

void RadosChunkStore::Abandon(const Digest& digest) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = in_flight_.find(digest);
  completed_.push_back(std::move(it->second));
  in_flight_.erase(it);
  ReapLocked();
  cv_.notify_all();
}

void RadosChunkStore::OnWriteComplete(rados_completion_t c, void* arg) {
  (void)c;
  auto* w = static_cast<InFlight*>(arg);
  w->store->FinishWrite(w);
}

void RadosChunkStore::FinishWrite(InFlight* w) {
  const int r = rados_aio_get_return_value(w->completion);
  std::lock_guard<std::mutex> l(mu_);
  if (r < 0 && !(r == -EEXIST && w->exclusive) && first_error_.ok()) {
    first_error_ =
        RadosError(r, "writing chunk " + w->digest.Hex(), ChunkName(w->digest));
  }
  --submitted_;
  submitted_bytes_ -= w->encoded.size();
  w->encoded = {};
  auto it = in_flight_.find(w->digest);
  completed_.push_back(std::move(it->second));
  in_flight_.erase(it);
  cv_.notify_all();
}

// Runs outside librados' callback (a completion is released only after its
// callback was called; librados keeps it alive until the callback returns).
void RadosChunkStore::ReapLocked() {
  for (auto& w : completed_) {
    if (w->completion != nullptr) rados_aio_release(w->completion);
    if (w->op != nullptr) rados_release_write_op(w->op);
  }
  completed_.clear();
}

void RadosChunkStore::WaitForWrite(const Digest& digest) {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return in_flight_.count(digest) == 0; });
}

Status RadosChunkStore::Sync() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return in_flight_.empty(); });
  ReapLocked();
  return std::exchange(first_error_, Status::OK());
}

Status RadosChunkStore::Remove(const Digest& digest) {
  WaitForWrite(digest);
  ++calls_;
  const int r = rados_remove(pool_->io(), ChunkOid(digest).c_str());
  if (r == -ENOENT) return MissingChunk(digest, ChunkName(digest));
  if (r < 0) return RadosError(r, "removing chunk", ChunkName(digest));
  return Status::OK();
}

Status RadosChunkStore::Quarantine(const Digest& digest) {
  WaitForWrite(digest);
  rados_ioctx_t io = pool_->io();
  const std::string from = ChunkOid(digest);
  const std::string to = QuarantineOid(digest);
  const std::string name = ChunkName(digest);
  uint64_t size = 0;
  time_t mtime = 0;
  ++calls_;
  int r = rados_stat(io, from.c_str(), &size, &mtime);
  if (r == -ENOENT) return MissingChunk(digest, name);
  if (r < 0) return RadosError(r, "quarantining chunk", name);
  // RADOS has no rename: copy, then remove. The copy is whatever bytes are
  // there (a damaged chunk is what gets quarantined), in bounded pieces.
  std::vector<uint8_t> piece(std::min(size, kCopyPieceSize));
  ++calls_;
  r = rados_write_full(io, to.c_str(), nullptr, 0);
  for (uint64_t off = 0; r >= 0 && off < size; off += piece.size()) {
    const size_t len = std::min<uint64_t>(piece.size(), size - off);
    Status s = ReadExactly(io, calls_, from, piece.data(), len, off, name);
    if (!s.ok()) return s.WithContext("quarantining chunk");
    ++calls_;
    r = rados_write(io, to.c_str(), reinterpret_cast<const char*>(piece.data()),
                    len, off);
  }
  if (r < 0) {
    return RadosError(r, "copying chunk to quarantine", pool_->ObjectName(to));
  }
  ++calls_;
  r = rados_remove(io, from.c_str());
  if (r < 0) return RadosError(r, "removing quarantined chunk", name);
  return Status::OK();
}

// ------------------------------------------------------------------- reads

Result<bool> RadosChunkStore::Contains(const Digest& digest) {
  WaitForWrite(digest);
  uint64_t size = 0;
  time_t mtime = 0;
  ++calls_;
  const int r =
      rados_stat(pool_->io(), ChunkOid(digest).c_str(), &size, &mtime);
  if (r == -ENOENT) return false;
  if (r < 0) return RadosError(r, "looking for chunk", ChunkName(digest));
  return true;
}

Result<uint64_t> RadosChunkStore::StoredSize(const Digest& digest) {
  WaitForWrite(digest);
  uint64_t size = 0;
  time_t mtime = 0;
  ++calls_;
  const int r =
      rados_stat(pool_->io(), ChunkOid(digest).c_str(), &size, &mtime);
  if (r == -ENOENT) return MissingChunk(digest, ChunkName(digest));
  if (r < 0) return RadosError(r, "looking for chunk", ChunkName(digest));
  return size;
}

Status RadosChunkStore::Get(const Digest& digest, std::vector<uint8_t>* out) {
  WaitForWrite(digest);
  const std::string oid = ChunkOid(digest);
  const std::string name = ChunkName(digest);
  std::unique_ptr<uint8_t[]> file(new uint8_t[kGetReadSize]);
  uint64_t size = 0;
  size_t got = 0;
  Status s = StatAndRead(pool_->io(), calls_, oid, file.get(), kGetReadSize,
                         &size, &got, name);
  if (s.IsNotFound()) return MissingChunk(digest, name);
  if (!s.ok()) return s;
  if (size > kMaxObjectSize) return TooLarge(size, name);
  if (size > got) {
    // A valid chunk with an unusually long block table.
    std::unique_ptr<uint8_t[]> whole(new uint8_t[size]);
    s = ReadExactly(pool_->io(), calls_, oid, whole.get(), size, 0, name);
    if (!s.ok()) return s;
    file = std::move(whole);
    got = size;
  }
  return DecodeChunk({file.get(), got}, digest, out, name);
}

Result<std::shared_ptr<ChunkReader>> RadosChunkStore::Open(
    const Digest& digest) {
  WaitForWrite(digest);
  std::string oid = ChunkOid(digest);
  std::string name = ChunkName(digest);
  auto layout = ReadChunkLayout(pool_->io(), calls_, oid, digest, name);
  if (!layout.ok()) return layout.status();
  return std::shared_ptr<ChunkReader>(std::make_shared<RadosChunkReader>(
      pool_, &calls_, std::move(oid), std::move(*layout), std::move(name)));
}

Status RadosChunkStore::Read(const Digest& digest, uint64_t offset,
                             std::span<uint8_t> out) {
  auto reader = Open(digest);
  if (!reader.ok()) return reader.status();
  return (*reader)->Read(offset, out);
}

Result<uint64_t> RadosChunkStore::PlainSize(const Digest& digest) {
  WaitForWrite(digest);
  auto layout = ReadChunkLayout(pool_->io(), calls_, ChunkOid(digest), digest,
                                ChunkName(digest));
  if (!layout.ok()) return layout.status();
  return static_cast<uint64_t>(layout->header.plain_size);
}

Status RadosChunkStore::List(const std::function<void(const Digest&)>& fn) {
  rados_list_ctx_t ctx = nullptr;
  int r = rados_nobjects_list_open(pool_->io(), &ctx);
  if (r < 0) return RadosError(r, "listing chunks", pool_->Name());
  const std::string want = prefix_ + "chunk/";
  std::vector<Digest> found;
  for (;;) {
    const char* entry = nullptr;
    ++calls_;  // an upper bound: librados fetches entries in batches
    r = rados_nobjects_list_next(ctx, &entry, nullptr, nullptr);
    if (r == -ENOENT) break;
    if (r < 0) break;
    const std::string_view oid(entry);
    if (!oid.starts_with(want)) continue;
    const std::string_view hex = oid.substr(want.size());
    // Only the names Put() writes: lowercase hex, nothing after it.
    if (hex.size() != 2 * Digest::kSize ||
        hex.find_first_not_of(kHexDigits) != std::string_view::npos) {
      continue;
    }
    auto d = Digest::FromHex(hex);
    if (d.ok()) found.push_back(*d);
  }
  rados_nobjects_list_close(ctx);
  if (r != -ENOENT) return RadosError(r, "listing chunks", pool_->Name());
  // Called after the listing, so `fn` may use the store.
  for (const Digest& d : found) fn(d);
  return Status::OK();
}

}  // namespace backy::store
