// Conformance suite: every ChunkStore implementation must pass these
// (restic's backend/test idea).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "store/coding.h"
#include "store/file_chunk_store.h"
#include "store/fs_util.h"
#include "store/mem_chunk_store.h"
#include "support/test_util.h"

namespace backy::store {
namespace {

std::vector<uint8_t> RandomData(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(size);
  for (auto& b : v) b = static_cast<uint8_t>(rng() % 7);  // compressible-ish
  return v;
}

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

template <typename Factory>
class ChunkStoreTest : public ::testing::Test {
 protected:
  ChunkStoreTest() : store_(factory_.Make()) {}
  Factory factory_;
  std::unique_ptr<ChunkStore> store_;
};

using Implementations = ::testing::Types<MemFactory, FileFactory>;
TYPED_TEST_SUITE(ChunkStoreTest, Implementations);

TYPED_TEST(ChunkStoreTest, PutGetRoundTrip) {
  auto data = RandomData(4 << 20, 1);
  Digest d = Digest::Of(data);
  auto put = this->store_->Put(d, data);
  ASSERT_OK(put.status());
  EXPECT_TRUE(put->created);
  EXPECT_GT(put->stored_bytes, 0u);
  ASSERT_OK(this->store_->Sync());
  std::vector<uint8_t> out;
  ASSERT_OK(this->store_->Get(d, &out));
  EXPECT_EQ(out, data);
  auto size = this->store_->PlainSize(d);
  ASSERT_OK(size.status());
  EXPECT_EQ(*size, data.size());
}

TYPED_TEST(ChunkStoreTest, SecondPutIsDeduplicated) {
  auto data = RandomData(100000, 2);
  Digest d = Digest::Of(data);
  ASSERT_OK(this->store_->Put(d, data).status());
  auto again = this->store_->Put(d, data);  // before Sync: still deduplicated
  ASSERT_OK(again.status());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->stored_bytes, 0u);
  ASSERT_OK(this->store_->Sync());
  again = this->store_->Put(d, data);
  ASSERT_OK(again.status());
  EXPECT_FALSE(again->created);
}

TYPED_TEST(ChunkStoreTest, RemoveBeforeSyncDropsThePendingChunk) {
  auto data = RandomData(5000, 3);
  Digest d = Digest::Of(data);
  ASSERT_OK(this->store_->Put(d, data).status());
  ASSERT_OK(this->store_->Remove(d));
  ASSERT_OK(this->store_->Sync());
  auto c = this->store_->Contains(d);
  ASSERT_OK(c.status());
  EXPECT_FALSE(*c);
}

TYPED_TEST(ChunkStoreTest, RewriteReplacesAChunk) {
  auto data = RandomData(70000, 4);
  Digest d = Digest::Of(data);
  ASSERT_OK(this->store_->Put(d, data).status());
  ASSERT_OK(this->store_->Sync());
  auto again = this->store_->Put(d, data, /*rewrite=*/true);
  ASSERT_OK(again.status());
  EXPECT_TRUE(again->replaced);
  EXPECT_FALSE(again->created);
  ASSERT_OK(this->store_->Sync());
  std::vector<uint8_t> out;
  ASSERT_OK(this->store_->Get(d, &out));
  EXPECT_EQ(out, data);
}

TYPED_TEST(ChunkStoreTest, MissingChunkIsNotFound) {
  auto data = RandomData(10, 3);
  Digest d = Digest::Of(data);
  std::vector<uint8_t> out;
  EXPECT_TRUE(this->store_->Get(d, &out).IsNotFound());
  auto c = this->store_->Contains(d);
  ASSERT_OK(c.status());
  EXPECT_FALSE(*c);
  EXPECT_TRUE(this->store_->Remove(d).IsNotFound());
}

TYPED_TEST(ChunkStoreTest, PartialReadsMatch) {
  auto data = RandomData(4 << 20, 4);
  Digest d = Digest::Of(data);
  ASSERT_OK(this->store_->Put(d, data).status());
  ASSERT_OK(this->store_->Sync());
  std::mt19937 rng(5);
  for (int i = 0; i < 100; ++i) {
    uint64_t off = rng() % data.size();
    uint64_t len = std::min<uint64_t>(1 + rng() % 200000, data.size() - off);
    std::vector<uint8_t> out(len);
    ASSERT_OK(this->store_->Read(d, off, out));
    ASSERT_TRUE(std::equal(out.begin(), out.end(), data.begin() + off));
  }
  std::vector<uint8_t> too_far(10);
  EXPECT_TRUE(
      this->store_->Read(d, data.size() - 5, too_far).IsInvalidArgument());
}

TYPED_TEST(ChunkStoreTest, ListRemoveQuarantine) {
  std::set<Digest> put;
  for (int i = 0; i < 5; ++i) {
    auto data = RandomData(1000 + i, 10 + i);
    Digest d = Digest::Of(data);
    ASSERT_OK(this->store_->Put(d, data).status());
    put.insert(d);
  }
  ASSERT_OK(this->store_->Sync());
  std::set<Digest> listed;
  ASSERT_OK(this->store_->List([&](const Digest& d) { listed.insert(d); }));
  EXPECT_EQ(listed, put);
  ASSERT_OK(this->store_->Remove(*put.begin()));
  ASSERT_OK(this->store_->Quarantine(*std::next(put.begin())));
  listed.clear();
  ASSERT_OK(this->store_->List([&](const Digest& d) { listed.insert(d); }));
  EXPECT_EQ(listed.size(), 3u);
}

TYPED_TEST(ChunkStoreTest, ConcurrentPutsOfSameAndDifferentChunks) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        auto data = RandomData(50000, i % 5 + (t % 2) * 100);
        auto put = this->store_->Put(Digest::Of(data), data);
        EXPECT_TRUE(put.ok()) << put.status().ToString();
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_OK(this->store_->Sync());
  size_t n = 0;
  ASSERT_OK(this->store_->List([&](const Digest&) { ++n; }));
  EXPECT_EQ(n, 10u);
}

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
