#include "store/legacy_chunk_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <semaphore>
#include <thread>

#include "store/chunk_format.h"
#include "store/file_io.h"
#include "store/filename.h"
#include "store/fs_util.h"
#include "store/legacy_chunk.h"

namespace backy::store {
namespace {

// The largest a 2.x chunk file can be: LZO1X's worst case for 4 MiB of
// incompressible data (n + n/16 + 64 + 3) plus python-lzo's header. Larger
// files are damaged, and are refused before they are read.
constexpr uint64_t kMaxLegacyChunkFileSize =
    kLegacyChunkHeaderSize + kMaxChunkSize + kMaxChunkSize / 16 + 64 + 3;

Status NotWritable(const std::string& name) {
  return Status::NotSupported(
      "a backy 2.x repository is read-only; run 'backy upgrade' first", name);
}

// The plain size from a chunk file's header.
Result<uint64_t> HeaderPlainSize(int fd, const std::string& path) {
  uint8_t h[kLegacyChunkHeaderSize];
  Status s = PReadAll(fd, h, 0, path);
  if (!s.ok()) {
    return Status::Corruption("2.x chunk: file too short for its header", path);
  }
  auto length = LegacyChunkPlainLength(h, path);
  if (!length.ok()) return length.status();
  return *length;
}

// Opens a chunk file; a missing one is Corruption: a 2.x revision named it.
Result<UniqueFd> OpenChunk(const std::string& path, const Digest& digest,
                           struct stat* st) {
  auto fd = OpenRegularFile(path, st);
  if (fd.status().IsNotFound()) {
    return Status::Corruption("2.x chunk " + digest.Hex() + " is missing",
                              path);
  }
  return fd;
}

// A slot of the bounded set of decodes running at once (RAII).
class DecodeSlot {
 public:
  DecodeSlot() { Semaphore().acquire(); }
  ~DecodeSlot() { Semaphore().release(); }
  DecodeSlot(const DecodeSlot&) = delete;
  DecodeSlot& operator=(const DecodeSlot&) = delete;

 private:
  static std::counting_semaphore<>& Semaphore() {
    static std::counting_semaphore<> sem(
        std::max<std::ptrdiff_t>(2, std::thread::hardware_concurrency()));
    return sem;
  }
};

class LegacyChunkReader final : public ChunkReader {
 public:
  LegacyChunkReader(UniqueFd fd, struct stat st, Digest digest,
                    std::string path, uint64_t plain_size)
      : fd_(std::move(fd)),
        st_(st),
        digest_(digest),
        path_(std::move(path)),
        plain_size_(plain_size) {}

  uint64_t PlainSize() const override { return plain_size_; }

  Status Read(uint64_t offset, std::span<uint8_t> out) override {
    if (offset > plain_size_ || out.size() > plain_size_ - offset) {
      return Status::InvalidArgument("read beyond the end of the chunk", path_);
    }
    const uint64_t size = static_cast<uint64_t>(st_.st_size);
    if (size > kMaxLegacyChunkFileSize) {
      return Status::Corruption("2.x chunk: file is " + std::to_string(size) +
                                    " bytes, more than a 4 MiB chunk can take",
                                path_);
    }
    // Decoding is CPU work: more decodes at once than cores only add
    // buffers (an NBD server's 16 workers each held 8 MiB: 404 MiB RSS at
    // --cache-size 256M). At most DecodeSlots() run at once.
    DecodeSlot slot;
    std::vector<uint8_t> file(size);
    Status s = PReadAll(fd_.get(), file, 0, path_);
    if (!s.ok()) return s;
    if (offset == 0 && out.size() == plain_size_) {
      // The whole chunk (a cache filling a block): straight into `out`.
      return DecodeLegacyChunkInto(file, digest_.Hex(), path_, out);
    }
    std::vector<uint8_t> plain(plain_size_);
    s = DecodeLegacyChunkInto(file, digest_.Hex(), path_, plain);
    if (!s.ok()) return s;
    std::copy_n(plain.begin() + static_cast<ptrdiff_t>(offset), out.size(),
                out.begin());
    return Status::OK();
  }

 private:
  const UniqueFd fd_;
  const struct stat st_;
  const Digest digest_;
  const std::string path_;
  const uint64_t plain_size_;
};

}  // namespace

LegacyChunkStore::LegacyChunkStore(std::string chunks_dir)
    : chunks_dir_(std::move(chunks_dir)) {}

std::string LegacyChunkStore::ChunkName(const Digest& digest) const {
  return LegacyChunkFileName(chunks_dir_, digest);
}

Result<PutResult> LegacyChunkStore::Put(const Digest& digest,
                                        std::span<const uint8_t> plain,
                                        bool rewrite) {
  (void)plain;
  (void)rewrite;
  return NotWritable(ChunkName(digest));
}

Result<bool> LegacyChunkStore::Contains(const Digest& digest) {
  struct stat st;
  const std::string path = ChunkName(digest);
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return Status::FromErrno(errno, "stat", path);
}

// Get and Read go through a reader, the one place that reads and decodes.
Status LegacyChunkStore::Get(const Digest& digest, std::vector<uint8_t>* out) {
  out->clear();
  auto reader = Open(digest);
  if (!reader.ok()) return reader.status();
  out->resize((*reader)->PlainSize());
  Status s = (*reader)->Read(0, *out);
  if (!s.ok()) out->clear();  // never hand out unchecked bytes
  return s;
}

Status LegacyChunkStore::Read(const Digest& digest, uint64_t offset,
                              std::span<uint8_t> out) {
  auto reader = Open(digest);
  if (!reader.ok()) return reader.status();
  return (*reader)->Read(offset, out);
}

Result<std::shared_ptr<ChunkReader>> LegacyChunkStore::Open(
    const Digest& digest) {
  const std::string path = ChunkName(digest);
  struct stat st;
  auto fd = OpenChunk(path, digest, &st);
  if (!fd.ok()) return fd.status();
  auto size = HeaderPlainSize(fd->get(), path);
  if (!size.ok()) return size.status();
  return std::shared_ptr<ChunkReader>(std::make_shared<LegacyChunkReader>(
      std::move(*fd), st, digest, path, *size));
}

Result<uint64_t> LegacyChunkStore::PlainSize(const Digest& digest) {
  const std::string path = ChunkName(digest);
  auto fd = OpenChunk(path, digest, nullptr);
  if (!fd.ok()) return fd.status();
  return HeaderPlainSize(fd->get(), path);
}

Status LegacyChunkStore::Sync() { return Status::OK(); }

Status LegacyChunkStore::Remove(const Digest& digest) {
  const std::string path = ChunkName(digest);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::NotFound("no such chunk", path);
    return Status::FromErrno(errno, "remove", path);
  }
  return Status::OK();
}

Status LegacyChunkStore::Quarantine(const Digest& digest) {
  return NotWritable(ChunkName(digest));
}

Status LegacyChunkStore::List(const std::function<void(const Digest&)>& fn) {
  return ForEachChunkFile(chunks_dir_, ParseLegacyChunkFileName, fn);
}

}  // namespace backy::store
