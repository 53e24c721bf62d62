#include "store/file_chunk_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "store/filename.h"
#include "store/fs_util.h"

namespace backy::store {

namespace {

// The one place every reader of a chunk file (Open, Get, PlainSize) reads
// and checks its header and block table: the file must be a regular file
// whose size is the one the block table gives, so no later read of
// stored bytes can run past the file or allocate more than a block.
struct OpenedChunk {
  UniqueFd fd;
  ChunkLayout layout;
};
Result<OpenedChunk> OpenChunkFile(const std::string& path,
                                  const Digest& digest) {
  struct stat st;
  auto fd = OpenRegularFile(path, &st);
  if (fd.status().IsNotFound()) {
    return Status::NotFound("chunk " + digest.Hex() + " is missing", path);
  }
  if (!fd.ok()) return fd.status();
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  uint8_t head[kChunkHeaderSize];
  if (file_size < kChunkHeaderSize) {
    return Status::Corruption("chunk file too short for its header", path);
  }
  Status s = PReadAll(fd->get(), head, 0, path);
  if (!s.ok()) return s;
  auto header = ParseChunkHeader(head, path);
  if (!header.ok()) return header.status();
  const size_t prefix_size = ChunkPrefixSize(header->block_count);
  if (file_size < prefix_size) {
    return Status::Corruption("chunk file too short for its block table", path);
  }
  std::vector<uint8_t> prefix(prefix_size);
  s = PReadAll(fd->get(), prefix, 0, path);
  if (!s.ok()) return s;
  auto layout = ParseChunkLayout(prefix, path);
  if (!layout.ok()) return layout.status();
  s = CheckChunkFileSize(*layout, file_size, path);
  if (!s.ok()) return s;
  if (layout->header.digest != digest) {
    return Status::Corruption("chunk file holds the wrong digest", path);
  }
  return OpenedChunk{std::move(*fd), std::move(*layout)};
}

class FileChunkReader final : public ChunkReader {
 public:
  FileChunkReader(int fd, ChunkLayout layout, std::string name)
      : fd_(fd), layout_(std::move(layout)), name_(std::move(name)) {}
  ~FileChunkReader() override { ::close(fd_); }

  uint64_t PlainSize() const override { return layout_.header.plain_size; }
  uint32_t BlockSize() const override { return layout_.header.block_size; }
  bool IsRawBlock(uint32_t block) const override {
    return block < layout_.blocks.size() &&
           layout_.blocks[block].codec == BlockCodec::kRaw;
  }
  Status Read(uint64_t offset, std::span<uint8_t> out) override {
    return ReadWith(PReadAll, offset, out);
  }
  Status ReadNoWait(uint64_t offset, std::span<uint8_t> out) override {
    return ReadWith(PReadNoWait, offset, out);
  }
  void Prefetch(uint64_t offset, uint64_t length) override;
  Result<uint64_t> CheckRawRange(uint64_t offset, uint64_t length,
                                 bool nowait) override;
  int FileDescriptor() const override { return fd_; }

 private:
  using PRead = Status (*)(int, std::span<uint8_t>, uint64_t,
                           const std::string&);
  Status ReadWith(PRead pread, uint64_t offset, std::span<uint8_t> out);
  // Reads raw blocks [first, first + count) (contiguous in the file) into
  // `dst` and checks each one's hash.
  Status ReadRawBlocks(PRead pread, size_t first, size_t count, uint8_t* dst);
  // A per-thread buffer of at least `size` bytes, for raw blocks read only
  // to be checked or to copy a part out: it stays in the CPU cache.
  static uint8_t* Scratch(size_t size) {
    thread_local std::vector<uint8_t> scratch;
    if (scratch.size() < size) scratch.resize(size);
    return scratch.data();
  }

  // True when [first, last] are raw blocks: their stored bytes are the
  // plain bytes, contiguous in the file.
  bool AllRaw(size_t first, size_t last) const {
    for (size_t i = first; i <= last; ++i) {
      if (layout_.blocks[i].codec != BlockCodec::kRaw) return false;
    }
    return true;
  }

  const int fd_;
  const ChunkLayout layout_;
  const std::string name_;
};

Status FileChunkReader::ReadWith(PRead pread, uint64_t offset,
                                 std::span<uint8_t> out) {
  const uint64_t plain = layout_.header.plain_size;
  if (offset > plain || out.size() > plain - offset) {
    return Status::InvalidArgument("read beyond the end of chunk", name_);
  }
  if (out.empty()) return Status::OK();
  const uint32_t bs = layout_.header.block_size;
  const uint64_t end = offset + out.size();
  const size_t first = offset / bs;
  const size_t last = (end - 1) / bs;
  if (offset % bs == 0 && (end % bs == 0 || end == plain) &&
      AllRaw(first, last)) {
    // Whole raw blocks (incompressible data): read them straight into the
    // caller's buffer and check them there, saving a staging copy.
    return ReadRawBlocks(pread, first, last + 1 - first, out.data());
  }
  if (first == last && layout_.blocks[first].codec == BlockCodec::kRaw) {
    // Part of one raw block (a small random read): read the whole block
    // into a scratch buffer, check it, copy the part.
    uint8_t* block = Scratch(layout_.PlainBlockSize(first));
    Status s = ReadRawBlocks(pread, first, 1, block);
    if (!s.ok()) return s;
    std::memcpy(out.data(), block + (offset - uint64_t{first} * bs),
                out.size());
    return Status::OK();
  }
  auto [begin, stored_end] = StoredRange(layout_, offset, out.size());
  std::unique_ptr<uint8_t[]> stored(new uint8_t[stored_end - begin]);
  std::span<uint8_t> st(stored.get(), stored_end - begin);
  Status s = pread(fd_, st, begin, name_);
  if (!s.ok()) return s;
  return DecodeRange(layout_, begin, st, offset, out, name_);
}

Result<uint64_t> FileChunkReader::CheckRawRange(uint64_t offset,
                                                uint64_t length, bool nowait) {
  const uint64_t plain = layout_.header.plain_size;
  if (length == 0 || offset > plain || length > plain - offset) {
    return Status::InvalidArgument("range beyond the end of chunk", name_);
  }
  const uint32_t bs = layout_.header.block_size;
  const size_t first = offset / bs;
  const size_t last = (offset + length - 1) / bs;
  if (!AllRaw(first, last)) {
    return Status::NotSupported("compressed block in range", name_);
  }
  // Read the blocks through the scratch buffer, 64 KiB at a time, only to
  // hash them; the bytes sent come from the page cache.
  const PRead pread = nowait ? PReadNoWait : PReadAll;
  const size_t per_read = std::max<size_t>(1, 64 * 1024 / bs);
  uint8_t* scratch = Scratch(per_read * bs);
  for (size_t i = first; i <= last; i += per_read) {
    Status s =
        ReadRawBlocks(pread, i, std::min(per_read, last + 1 - i), scratch);
    if (!s.ok()) return s;
  }
  return layout_.block_offsets[first] + (offset - uint64_t{first} * bs);
}

Status FileChunkReader::ReadRawBlocks(PRead pread, size_t first, size_t count,
                                      uint8_t* dst) {
  const size_t last = first + count - 1;
  const uint64_t begin = layout_.block_offsets[first];
  const uint64_t size =
      layout_.block_offsets[last] + layout_.PlainBlockSize(last) - begin;
  Status s = pread(fd_, {dst, size}, begin, name_);
  if (!s.ok()) return s;
  for (size_t i = first; i <= last; ++i) {
    s = CheckBlockHash(layout_, i, dst + (layout_.block_offsets[i] - begin),
                       name_);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

void FileChunkReader::Prefetch(uint64_t offset, uint64_t length) {
  const uint64_t plain = layout_.header.plain_size;
  if (offset >= plain || length == 0) return;
  length = std::min(length, plain - offset);
  auto [begin, end] = StoredRange(layout_, offset, length);
  (void)::posix_fadvise(fd_, static_cast<off_t>(begin),
                        static_cast<off_t>(end - begin), POSIX_FADV_WILLNEED);
}

}  // namespace

FileChunkStore::FileChunkStore(std::string chunks_dir, std::string tmp_dir,
                               std::string quarantine_dir,
                               CompressionOptions compression)
    : chunks_dir_(std::move(chunks_dir)),
      tmp_dir_(std::move(tmp_dir)),
      quarantine_dir_(std::move(quarantine_dir)),
      compression_(compression) {}

std::string FileChunkStore::PrefixDir(const Digest& digest) const {
  return ChunkPrefixDirName(chunks_dir_, digest);
}

std::string FileChunkStore::ChunkName(const Digest& digest) const {
  return ChunkFileName(chunks_dir_, digest);
}

Result<uint64_t> FileChunkStore::StoredSize(const Digest& digest) {
  struct stat st;
  const std::string path = ChunkName(digest);
  if (::stat(path.c_str(), &st) != 0) {
    return Status::FromErrno(errno, "stat", path);
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<bool> FileChunkStore::Contains(const Digest& digest) {
  struct stat st;
  std::string path = ChunkName(digest);
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return Status::FromErrno(errno, "stat", path);
}

namespace {
constexpr uint64_t kGroupBytes = 64ull << 20;
}  // namespace

Result<PutResult> FileChunkStore::Put(const Digest& digest,
                                      std::span<const uint8_t> plain,
                                      bool rewrite) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (pending_set_.count(digest)) return PutResult{};  // written just now
  }
  auto exists = Contains(digest);
  if (!exists.ok()) return exists.status();
  if (*exists && !rewrite) return PutResult{};

  std::vector<uint8_t> encoded;
  ThreadChunkEncoder(compression_).Encode(digest, plain, &encoded);

  const std::string tmp = TempPath(tmp_dir_, digest.Hex());
  Status s;
  {
    UniqueFd fd(::open(tmp.c_str(),
                       O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                       kPrivateFileMode));
    if (fd.get() < 0) return Status::FromErrno(errno, "create", tmp);
    s = PWriteAll(fd.get(), encoded, 0, tmp);
    // Start write-back now, so the group's syncfs finds little left to do.
    if (s.ok()) (void)::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s.WithContext("writing chunk " + digest.Hex());
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!pending_set_.insert(digest).second) {
      // Another thread wrote the same chunk meanwhile.
      ::unlink(tmp.c_str());
      return PutResult{};
    }
    pending_.push_back({digest, tmp});
    pending_bytes_ += encoded.size();
  }
  s = CommitGroup(TakeGroup(kGroupBytes));
  if (!s.ok()) return s;
  PutResult result;
  result.created = !*exists;
  result.replaced = *exists;
  result.stored_bytes = encoded.size();
  return result;
}

std::vector<FileChunkStore::Pending> FileChunkStore::TakeGroup(
    uint64_t min_bytes) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Pending> batch;
  if (pending_.empty() || pending_bytes_ < min_bytes) return batch;
  batch.swap(pending_);
  pending_bytes_ = 0;
  // Digests stay in pending_set_ until renamed, so nobody writes them again.
  return batch;
}

Status FileChunkStore::CommitGroup(std::vector<Pending> batch) {
  if (batch.empty()) return Status::OK();
  Status s;
  {
    UniqueFd dir(::open(tmp_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) {
      s = Status::FromErrno(errno, "open directory", tmp_dir_);
    } else if (::syncfs(dir.get()) != 0) {
      s = Status::FromErrno(errno, "syncfs", tmp_dir_);
    }
  }
  std::set<std::string> dirs;
  for (const Pending& p : batch) {
    const std::string path = ChunkName(p.digest);
    if (s.ok() && ::rename(p.tmp.c_str(), path.c_str()) != 0) {
      if (errno == ENOENT) {
        // First chunk with this prefix: create the directory, then retry.
        s = MakeDirs(PrefixDir(p.digest));
        dirs.insert(chunks_dir_);
        if (s.ok() && ::rename(p.tmp.c_str(), path.c_str()) != 0) {
          s = Status::FromErrno(errno, "rename", path);
        }
      } else {
        s = Status::FromErrno(errno, "rename", path);
      }
    }
    if (!s.ok()) ::unlink(p.tmp.c_str());
    dirs.insert(PrefixDir(p.digest));
  }
  std::lock_guard<std::mutex> l(mu_);
  for (const Pending& p : batch) pending_set_.erase(p.digest);
  dirty_dirs_.insert(dirs.begin(), dirs.end());
  return s;
}

Status FileChunkStore::Get(const Digest& digest, std::vector<uint8_t>* out) {
  const std::string path = ChunkName(digest);
  auto chunk = OpenChunkFile(path, digest);
  if (!chunk.ok()) return chunk.status();
  std::vector<uint8_t> file(chunk->layout.file_size);
  Status s = PReadAll(chunk->fd.get(), file, 0, path);
  if (!s.ok()) return s;
  return DecodeChunk(file, digest, out, path);
}

Result<std::shared_ptr<ChunkReader>> FileChunkStore::Open(
    const Digest& digest) {
  const std::string path = ChunkName(digest);
  auto chunk = OpenChunkFile(path, digest);
  if (!chunk.ok()) return chunk.status();
  return std::shared_ptr<ChunkReader>(std::make_shared<FileChunkReader>(
      chunk->fd.release(), std::move(chunk->layout), path));
}

Status FileChunkStore::Read(const Digest& digest, uint64_t offset,
                            std::span<uint8_t> out) {
  auto reader = Open(digest);
  if (!reader.ok()) return reader.status();
  return (*reader)->Read(offset, out);
}

Result<uint64_t> FileChunkStore::PlainSize(const Digest& digest) {
  auto chunk = OpenChunkFile(ChunkName(digest), digest);
  if (!chunk.ok()) return chunk.status();
  return static_cast<uint64_t>(chunk->layout.header.plain_size);
}

Status FileChunkStore::Sync() {
  Status c = CommitGroup(TakeGroup(0));
  if (!c.ok()) return c;
  std::set<std::string> dirs;
  {
    std::lock_guard<std::mutex> l(mu_);
    dirs.swap(dirty_dirs_);
  }
  for (const auto& d : dirs) {
    Status s = SyncDir(d);
    if (!s.ok()) return s;
  }
  return Status::OK();
}

Status FileChunkStore::Remove(const Digest& digest) {
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->digest == digest) {
        ::unlink(it->tmp.c_str());
        pending_bytes_ = 0;  // a rough figure is fine: it only paces groups
        pending_.erase(it);
        pending_set_.erase(digest);
        return Status::OK();
      }
    }
  }
  const std::string path = ChunkName(digest);
  if (::unlink(path.c_str()) != 0)
    return Status::FromErrno(errno, "remove", path);
  return Status::OK();
}

Status FileChunkStore::Quarantine(const Digest& digest) {
  Status s = MakeDirs(quarantine_dir_);
  if (!s.ok()) return s;
  const std::string from = ChunkName(digest);
  const std::string to = QuarantinedChunkFileName(quarantine_dir_, digest);
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Status::FromErrno(errno, "quarantine", from);
  }
  s = SyncDir(quarantine_dir_);
  if (!s.ok()) return s;
  return SyncDir(PrefixDir(digest));
}

Status FileChunkStore::List(const std::function<void(const Digest&)>& fn) {
  return ForEachChunkFile(chunks_dir_, ParseChunkFileName, fn);
}

}  // namespace backy::store
