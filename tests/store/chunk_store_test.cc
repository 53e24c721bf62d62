// The conformance suite (chunk_store_conformance.h) on MemChunkStore and
// FileChunkStore, and FileChunkStore's own cases.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "store/chunk_store_conformance.h"
#include "store/coding.h"
#include "store/file_chunk_store.h"
#include "store/fs_util.h"
#include "store/mem_chunk_store.h"
#include "support/test_util.h"

namespace backy::store {
namespace {

struct MemFactory {
  std::unique_ptr<ChunkStore> Make() {
    return std::make_unique<MemChunkStore>();
  }
};

struct FileFactory {
  std::string dir;
  FileFactory() {
    char tmpl[] = "/tmp/backy-chunkstore-XXXXXX";
    dir = ::mkdtemp(tmpl);
    std::filesystem::create_directories(dir + "/chunks");
    std::filesystem::create_directories(dir + "/tmp");
  }
  ~FileFactory() { std::filesystem::remove_all(dir); }
  std::unique_ptr<ChunkStore> Make() {
    return std::make_unique<FileChunkStore>(dir + "/chunks", dir + "/tmp",
                                            dir + "/quarantine",
                                            CompressionOptions{});
  }
};

// A typed suite per factory: a failure names the store.
INSTANTIATE_TYPED_TEST_SUITE_P(Mem, ChunkStoreTest, MemFactory);
INSTANTIATE_TYPED_TEST_SUITE_P(File, ChunkStoreTest, FileFactory);

// File-specific: a damaged chunk file is reported with its digest and path.
TEST(FileChunkStoreTest, FlippedByteNamesChunkAndFile) {
  FileFactory f;
  auto store = f.Make();
  auto data = RandomData(1 << 20, 42);
  Digest d = Digest::Of(data);
  ASSERT_OK(store->Put(d, data).status());
  ASSERT_OK(store->Sync());
  std::string path = store->ChunkName(d);
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t b;
  ASSERT_EQ(::pread(fd, &b, 1, 5000), 1);
  b ^= 1;
  ASSERT_EQ(::pwrite(fd, &b, 1, 5000), 1);
  ::close(fd);
  std::vector<uint8_t> out;
  Status s = store->Get(d, &out);
  ASSERT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find(path), std::string::npos) << s.ToString();
}

// Rewrites the stored size of every block of the chunk file at `path` to
// `stored` and recomputes the header checksum: a block table that passes
// every check but the one against the file and the format's limits.
void CraftStoredSizes(const std::string& path, uint32_t stored) {
  std::vector<uint8_t> file;
  ASSERT_OK(ReadWholeFile(path, &file));
  const uint32_t blocks = DecodeFixed32(file.data() + 20);
  for (uint32_t i = 0; i < blocks; ++i) {
    uint8_t* e = file.data() + kChunkHeaderSize + kBlockEntrySize * i;
    EncodeFixed32(e, stored);
    EncodeFixed32(e + 4, static_cast<uint32_t>(BlockCodec::kZstd));
  }
  EncodeFixed64(file.data() + kHeaderChecksumOffset,
                HeaderChecksum(file.data(), ChunkPrefixSize(blocks)));
  ASSERT_OK(WriteFileAtomic(path, file, DirName(path)));
}

// Issue 9 item 6: huge stored sizes in a block table with a valid checksum
// made the NBD server's reader allocate them (std::bad_alloc). Every
// reader (Open, Get, PlainSize) checks the table against the file and the
// format's limits, once, and names the chunk.
TEST(FileChunkStoreTest, HugeStoredSizesAreCorruptionForEveryReader) {
  FileFactory f;
  auto store = f.Make();
  auto data = RandomData(kMaxChunkSize, 5);  // compressible: zstd blocks
  Digest d = Digest::Of(data);
  ASSERT_OK(store->Put(d, data).status());
  ASSERT_OK(store->Sync());
  const std::string path = store->ChunkName(d);
  for (uint32_t stored : {0xFFFFFFF0u, kMaxChunkSize + 1}) {
    CraftStoredSizes(path, stored);
    // Bound the address space: allocating the stored sizes would fail.
    struct rlimit old;
    ASSERT_EQ(::getrlimit(RLIMIT_AS, &old), 0);
    struct rlimit tight = old;
    tight.rlim_cur = uint64_t{4} << 30;
    ASSERT_EQ(::setrlimit(RLIMIT_AS, &tight), 0);
    auto reader = store->Open(d);
    std::vector<uint8_t> out;
    Status get = store->Get(d, &out);
    std::vector<uint8_t> part(4096);
    Status read = store->Read(d, 100, part);
    auto size = store->PlainSize(d);
    ASSERT_EQ(::setrlimit(RLIMIT_AS, &old), 0);
    for (const Status& s : {reader.status(), get, read, size.status()}) {
      EXPECT_TRUE(s.IsCorruption()) << s.ToString();
      EXPECT_NE(s.ToString().find(path), std::string::npos) << s.ToString();
      EXPECT_NE(s.ToString().find("stored size"), std::string::npos)
          << s.ToString();
    }
  }
}

TEST(FileChunkStoreTest, FileLargerOrSmallerThanItsTableIsCorruption) {
  FileFactory f;
  auto store = f.Make();
  auto data = RandomData(1 << 20, 6);
  Digest d = Digest::Of(data);
  ASSERT_OK(store->Put(d, data).status());
  ASSERT_OK(store->Sync());
  const std::string path = store->ChunkName(d);
  const uint64_t size = std::filesystem::file_size(path);
  for (uint64_t bad : {size + 1, size - 1, uint64_t{50} << 30}) {
    std::filesystem::resize_file(path, bad);  // 50 GiB: sparse
    std::vector<uint8_t> out;
    Status s = store->Get(d, &out);
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.ToString().find(path), std::string::npos) << s.ToString();
    auto reader = store->Open(d);
    EXPECT_TRUE(reader.status().IsCorruption()) << reader.status().ToString();
  }
}

// Issue 9 item 7: a chunk that is a FIFO or a device must not hang or
// stream forever.
TEST(FileChunkStoreTest, NonRegularChunkIsCorruption) {
  FileFactory f;
  auto store = f.Make();
  auto data = RandomData(1000, 7);
  Digest d = Digest::Of(data);
  ASSERT_OK(store->Put(d, data).status());
  ASSERT_OK(store->Sync());
  const std::string path = store->ChunkName(d);
  std::filesystem::remove(path);
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  std::vector<uint8_t> out;
  Status s = store->Get(d, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.ToString().find("a FIFO"), std::string::npos) << s.ToString();
  std::filesystem::remove(path);
  std::filesystem::create_symlink("/dev/zero", path);
  s = store->Open(d).status();
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST(FileChunkStoreTest, LeavesNoTempFiles) {
  FileFactory f;
  auto store = f.Make();
  for (int i = 0; i < 3; ++i) {
    auto data = RandomData(5000, i);
    ASSERT_OK(store->Put(Digest::Of(data), data).status());
  }
  ASSERT_OK(store->Sync());
  EXPECT_TRUE(std::filesystem::is_empty(f.dir + "/tmp"));
}

}  // namespace
}  // namespace backy::store
