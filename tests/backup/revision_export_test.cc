// RevisionExport, BlockCache and ChunkReaderCache on a real (temporary)
// repository: reads equal the image at any offset, zero slots are holes,
// a damaged chunk fails only the reads that touch it, caches stay bounded.
#include "backup/revision_export.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "store/chunk_format.h"
#include "store/coding.h"
#include "store/directory_repository.h"
#include "store/fs_util.h"
#include "store/test_point.h"
#include "support/test_util.h"

namespace backy::backup {
namespace {

using store::DirectoryRepository;
using store::Repository;
using store::Revision;
using store::RevisionIndex;
constexpr uint64_t kMiB = 1024 * 1024;
constexpr uint64_t kChunk = store::kDefaultChunkSize;
constexpr uint64_t kBlock = store::kChunkBlockSize;

class RevisionExportTest : public ::testing::Test {
 protected:
  // Slots: 0 random (raw blocks), 1 zeros (no chunk), 2 text (zstd
  // blocks), 3 random again, 4 short (1 MiB + 1234 bytes, last block short).
  void SetUp() override {
    char tmpl[] = "/tmp/backy-rexport-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    dir_ = root_ + "/repo";
    store::RepositoryConfig config;
    config.source = {{"type", "file"}, {"filename", "/nonexistent"}};
    ASSERT_OK(Repository::Init(dir_, config));
    auto repo = DirectoryRepository::Open(dir_);
    ASSERT_TRUE(repo.ok()) << repo.status().ToString();
    repo_ = std::move(*repo);

    image_.resize(4 * kChunk + kMiB + 1234);
    std::mt19937_64 rng(7);
    auto random = [&](uint64_t from, uint64_t to) {
      for (uint64_t i = from; i < to; ++i)
        image_[i] = static_cast<uint8_t>(rng());
    };
    random(0, kChunk);
    for (uint64_t i = 2 * kChunk; i < 3 * kChunk; ++i) {
      image_[i] = static_cast<uint8_t>("line of text, compressible\n"[i % 27]);
    }
    random(3 * kChunk, image_.size());

    RevisionIndex index(image_.size(), kChunk);
    for (size_t s = 0; s < index.slot_count(); ++s) {
      std::span<const uint8_t> plain(image_.data() + s * kChunk,
                                     index.SlotLength(s));
      if (s == 1) continue;  // zero slot
      Digest d = Digest::Of(plain);
      ASSERT_TRUE(repo_->chunks().Put(d, plain).ok());
      index.set_slot(s, d);
    }
    ASSERT_OK(repo_->chunks().Sync());
    rev_.id = store::NewRevisionId();
    rev_.timestamp_us = store::NowMicros();
    rev_.size = image_.size();
    rev_.chunk_size = kChunk;
    rev_.tags = {"daily"};
    ASSERT_OK(repo_->Publish(rev_, index));
    index_ = index;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::shared_ptr<RevisionExport> MakeExport(uint64_t cache_bytes,
                                             size_t open_chunks = 64) {
    cache_ = std::make_shared<BlockCache>(cache_bytes);
    readers_ = std::make_shared<ChunkReaderCache>(open_chunks);
    return std::make_shared<RevisionExport>(repo_, rev_, index_, cache_,
                                            readers_);
  }

  // Reads [offset, offset + len) and compares it with the image.
  void ExpectRead(RevisionExport& e, uint64_t offset, uint64_t len) {
    std::vector<uint8_t> buf(len, 0xAA);
    Status s = e.Read(offset, buf);
    ASSERT_TRUE(s.ok()) << "offset " << offset << " length " << len << ": "
                        << s.ToString();
    ASSERT_TRUE(std::equal(buf.begin(), buf.end(), image_.begin() + offset))
        << "offset " << offset << " length " << len;
  }

  // Flips one byte at `file_offset` of slot `slot`'s chunk file.
  void Damage(size_t slot, uint64_t file_offset) {
    std::string path = repo_->chunks().ChunkName(index_.slot(slot));
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    ASSERT_TRUE(f) << path;
    f.seekg(static_cast<std::streamoff>(file_offset));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(file_offset));
    f.put(static_cast<char>(c ^ 0x40));
  }

  std::string root_, dir_;
  std::shared_ptr<DirectoryRepository> repo_;
  std::vector<uint8_t> image_;
  Revision rev_;
  RevisionIndex index_;
  std::shared_ptr<BlockCache> cache_;
  std::shared_ptr<ChunkReaderCache> readers_;
};

TEST_F(RevisionExportTest, ReadsAcrossChunkAndBlockBoundariesEqualImage) {
  for (uint64_t cache_bytes : {uint64_t{0}, 1 * kMiB, 64 * kMiB}) {
    SCOPED_TRACE("cache " + std::to_string(cache_bytes));
    auto e = MakeExport(cache_bytes);
    ASSERT_EQ(e->Size(), image_.size());
    const uint64_t size = image_.size();
    // Edges: one byte, a block, across blocks, across slots (data/zero,
    // zero/text, text/random), the short last block, the whole image.
    for (auto [off, len] : std::vector<std::pair<uint64_t, uint64_t>>{
             {0, 1},
             {0, kBlock},
             {kBlock - 10, 20},
             {kBlock, 3 * kBlock},
             {kBlock / 2, 5 * kBlock},
             {kChunk - 4096, 8192},
             {2 * kChunk - 100, 200},
             {3 * kChunk - kBlock - 7, kBlock + 14},
             {3 * kChunk - 5, 10},
             {size - 1, 1},
             {size - kBlock - 3, kBlock + 3},
             {4 * kChunk, size - 4 * kChunk},
             {0, size}}) {
      ExpectRead(*e, off, len);
      ExpectRead(*e, off, len);  // again, through the cache
    }
    std::mt19937_64 rng(1);
    for (int i = 0; i < 300; ++i) {
      uint64_t len = 1 + rng() % (i % 3 == 0 ? 3 * kBlock : 8192);
      uint64_t off = rng() % (size - len + 1);
      ExpectRead(*e, off, len);
    }
  }
}

TEST_F(RevisionExportTest, ZeroSlotsReadAsZerosAndShowAsHoles) {
  auto e = MakeExport(kMiB);
  std::vector<nbd::ExportExtent> ext;
  ASSERT_OK(e->BlockStatus(0, image_.size(), &ext));
  std::vector<nbd::ExportExtent> want = {
      {0, kChunk, false, false},
      {kChunk, kChunk, true, true},
      {2 * kChunk, image_.size() - 2 * kChunk, false, false}};
  EXPECT_EQ(ext, want);

  ext.clear();
  ASSERT_OK(e->BlockStatus(kChunk + 5, 10, &ext));
  want = {{kChunk + 5, 10, true, true}};
  EXPECT_EQ(ext, want);

  std::vector<uint8_t> buf(kChunk + 2, 0xAA);
  ASSERT_OK(e->Read(kChunk - 1, buf));
  EXPECT_EQ(buf.front(), image_[kChunk - 1]);
  EXPECT_EQ(buf.back(), image_[2 * kChunk]);
  EXPECT_TRUE(std::all_of(buf.begin() + 1, buf.end() - 1,
                          [](uint8_t b) { return b == 0; }));
}

TEST_F(RevisionExportTest, DamagedBlockFailsOnlyReadsTouchingIt) {
  // Slot 0 holds raw blocks: block 5's bytes start at prefix + 5 blocks.
  Damage(0, store::ChunkPrefixSize(kChunk / kBlock) + 5 * kBlock + 100);
  // Slot 2 holds compressed blocks: damage its last byte (the last block).
  std::string path2 = repo_->chunks().ChunkName(index_.slot(2));
  Damage(2, std::filesystem::file_size(path2) - 1);

  for (uint64_t cache_bytes : {uint64_t{0}, 16 * kMiB}) {
    auto e = MakeExport(cache_bytes);
    std::vector<uint8_t> buf(4096);
    for (int pass = 0; pass < 2; ++pass) {  // a failure is not cached
      EXPECT_TRUE(e->Read(5 * kBlock + 4096, buf).IsCorruption());
      std::vector<uint8_t> whole(kChunk);
      EXPECT_TRUE(e->Read(0, whole).IsCorruption());
      EXPECT_TRUE(e->Read(3 * kChunk - 4096, buf).IsCorruption());
    }
    // Everything else still reads, also in the damaged chunks.
    ExpectRead(*e, 0, 5 * kBlock);
    ExpectRead(*e, 6 * kBlock, kChunk - 6 * kBlock);
    ExpectRead(*e, 5 * kBlock - 10, 10);
    // Compressed chunks use large blocks: only the last one is damaged.
    ExpectRead(*e, 2 * kChunk, kChunk - store::kCompressedBlockSize);
    ExpectRead(*e, 3 * kChunk, image_.size() - 3 * kChunk);
  }
}

TEST_F(RevisionExportTest, DamagedChunkHeaderFailsOnlyItsSlot) {
  Damage(3, 20);  // inside the header: checksum mismatch
  auto e = MakeExport(kMiB);
  std::vector<uint8_t> buf(4096);
  EXPECT_TRUE(e->Read(3 * kChunk + 100, buf).IsCorruption());
  EXPECT_TRUE(e->Read(3 * kChunk - 100, buf).IsCorruption());  // spans slots
  ExpectRead(*e, 0, 3 * kChunk);
  ExpectRead(*e, 4 * kChunk, image_.size() - 4 * kChunk);
}

// Issue 9 item 6: a block table with huge stored sizes and a valid
// checksum made the server's reader allocate them (std::bad_alloc, every
// client dropped). Now the chunk fails to open, naming it; the other slots
// are served, by every read path.
TEST_F(RevisionExportTest, HugeStoredSizesFailOnlyTheirSlot) {
  const std::string path = repo_->chunks().ChunkName(index_.slot(2));
  std::vector<uint8_t> file;
  ASSERT_OK(store::ReadWholeFile(path, &file));
  const uint32_t blocks = store::DecodeFixed32(file.data() + 20);
  ASSERT_GT(blocks, 1u);
  for (uint32_t i = 0; i < blocks; ++i) {
    store::EncodeFixed32(
        file.data() + store::kChunkHeaderSize + store::kBlockEntrySize * i,
        0xF0000000u);
  }
  store::EncodeFixed64(
      file.data() + store::kHeaderChecksumOffset,
      store::HeaderChecksum(file.data(), store::ChunkPrefixSize(blocks)));
  ASSERT_OK(store::WriteFileAtomic(path, file, repo_->tmp_dir()));
  auto e = MakeExport(kMiB);
  std::vector<uint8_t> whole(kChunk), part(4096);
  std::vector<nbd::FileExtent> files;
  for (Status s : {e->Read(2 * kChunk, whole), e->Read(2 * kChunk + 100, part),
                   e->ReadToFiles(2 * kChunk, whole, false, &files)}) {
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_NE(s.ToString().find(path), std::string::npos) << s.ToString();
  }
  ExpectRead(*e, 0, 2 * kChunk);
  ExpectRead(*e, 3 * kChunk, image_.size() - 3 * kChunk);
}

// Issue 9 item 8: in directory mode one damaged .rev made the listing of
// every repository fail.
TEST_F(RevisionExportTest, ListingSkipsDamagedRevisions) {
  Revision other = rev_;
  other.id = store::NewRevisionId();
  other.timestamp_us += 1;
  ASSERT_OK(repo_->Publish(other, index_));
  std::ofstream(repo_->RevisionPath(other.id)) << "id: [broken\n";
  auto p = RepositoryExports::Open(root_, 8 * kMiB);  // directory mode
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto list = (*p)->ListExports({});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "repo/" + rev_.id);
  auto e = (*p)->OpenExport("repo/last", {});
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  // NBD_INFO_NAME and the connection log name the revision, not "last".
  EXPECT_EQ((*e)->CanonicalName(), "repo/" + rev_.id);
  EXPECT_TRUE((*p)->OpenExport("repo/" + other.id, {}).status().IsNotFound());
}

// A revision forgotten (or expired) between resolving its name and opening
// its index is gone, not damaged.
TEST_F(RevisionExportTest, RevisionForgottenWhileOpeningIsNotFound) {
  auto p = RepositoryExports::Open(dir_, 8 * kMiB);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ScopedTestPoint forget("export-resolved",
                         [&] { ASSERT_OK(repo_->Forget(rev_.id)); });
  auto e = (*p)->OpenExport("last", {});
  EXPECT_TRUE(e.status().IsNotFound()) << e.status().ToString();
  EXPECT_NE(e.status().ToString().find("removed"), std::string::npos)
      << e.status().ToString();
}

TEST_F(RevisionExportTest, IndexMissingWhileOpeningIsCorruption) {
  ASSERT_EQ(::unlink(repo_->IndexPath(rev_.id).c_str()), 0);
  auto p = RepositoryExports::Open(dir_, 8 * kMiB);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto e = (*p)->OpenExport("last", {});
  EXPECT_TRUE(e.status().IsCorruption()) << e.status().ToString();
}

TEST_F(RevisionExportTest, MissingChunkIsNotFound) {
  std::filesystem::remove(repo_->chunks().ChunkName(index_.slot(4)));
  auto e = MakeExport(kMiB);
  std::vector<uint8_t> buf(10);
  EXPECT_TRUE(e->Read(4 * kChunk, buf).IsNotFound());
  ExpectRead(*e, 0, 4 * kChunk);
}

TEST_F(RevisionExportTest, CacheStaysWithinCapacity) {
  auto e = MakeExport(16 * kMiB);  // one 512 KiB block per shard
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) {
    // Mostly the compressed slot, whose blocks are cached.
    uint64_t off = i % 4 ? 2 * kChunk + rng() % (kChunk - 4096)
                         : rng() % (image_.size() - 4096);
    ExpectRead(*e, off, 4096);
    ASSERT_LE(cache_->bytes(), cache_->capacity());
  }
  EXPECT_GT(cache_->bytes(), 0u);
  EXPECT_LE(cache_->capacity(), 16 * kMiB);
}

// Only compressed blocks that a read covers in part are cached, whole (the
// chunk's own block size, 512 KiB). Raw blocks are never cached: the page
// cache holds them and a re-read costs a pread and a hash. Streaming reads
// decode straight into the caller's buffer.
TEST_F(RevisionExportTest, OnlyPartlyReadCompressedBlocksAreCached) {
  auto e = MakeExport(64 * kMiB);
  const uint64_t cb = store::kCompressedBlockSize;
  ExpectRead(*e, 2 * kChunk, kChunk);  // a streaming read: nothing cached
  EXPECT_EQ(cache_->bytes(), 0u);
  ExpectRead(*e, 10, 4096);                     // part of a raw block
  ExpectRead(*e, 4 * kChunk + kMiB + 10, 100);  // the short last raw block
  EXPECT_EQ(cache_->bytes(), 0u);
  ExpectRead(*e, 2 * kChunk + 100, 10);  // part of compressed block 0
  EXPECT_EQ(cache_->bytes(), BlockCache::Footprint(cb));
  ExpectRead(*e, 2 * kChunk + 200000, 10);  // the same block: a hit
  EXPECT_EQ(cache_->bytes(), BlockCache::Footprint(cb));
  ExpectRead(*e, 2 * kChunk, 2 * cb);  // block 0 from the cache, block 1 not
  EXPECT_EQ(cache_->bytes(), BlockCache::Footprint(cb));
}

TEST_F(RevisionExportTest, ConcurrentReadsEqualImage) {
  auto e = MakeExport(2 * kMiB, 2);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint8_t> buf;
      for (int i = 0; i < 200; ++i) {
        uint64_t len = 1 + rng() % (i % 2 ? 4096 : 2 * kBlock);
        uint64_t off = rng() % (image_.size() - len + 1);
        buf.assign(len, 0);
        if (!e->Read(off, buf).ok() ||
            !std::equal(buf.begin(), buf.end(), image_.begin() + off)) {
          ++bad;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(readers_->size(), 8u);  // 8 shards of at least one reader
}

TEST_F(RevisionExportTest, CacheHintSucceeds) {
  auto e = MakeExport(kMiB);
  ASSERT_OK(e->Cache(0, image_.size()));
  EXPECT_EQ(cache_->bytes(), 0u);  // a page-cache hint, no decoding
  ExpectRead(*e, 0, image_.size());
}

TEST_F(RevisionExportTest, RepositoryExportsResolveSpecs) {
  auto p = RepositoryExports::Open(dir_, 8 * kMiB);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  for (std::string name : {"", "last", "0", "daily"}) {
    auto e = (*p)->OpenExport(name, {});
    ASSERT_TRUE(e.ok()) << name << ": " << e.status().ToString();
    EXPECT_EQ((*e)->Size(), image_.size());
    std::vector<uint8_t> buf(3 * kBlock);
    ASSERT_OK((*e)->Read(kChunk - kBlock, buf));
    EXPECT_TRUE(
        std::equal(buf.begin(), buf.end(), image_.begin() + kChunk - kBlock));
  }
  EXPECT_TRUE((*p)->OpenExport("no-such-revision", {}).status().IsNotFound());
  auto list = (*p)->ListExports({});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, rev_.id);
}

// Issue 14: with no memory cache, partial reads of compressed blocks are
// served from the block file once decoded (and equal the image); a
// streaming read fills it too.
TEST_F(RevisionExportTest, BlockFileServesDecodedBlocks) {
  auto file = BlockFile::Create("/tmp", 64 * kMiB);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::shared_ptr<BlockFile> bf = std::move(*file);
  cache_ = std::make_shared<BlockCache>(0);
  readers_ = std::make_shared<ChunkReaderCache>(64);
  RevisionExport e(repo_, rev_, index_, cache_, readers_, {}, bf);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) {
    ExpectRead(e, 2 * kChunk + rng() % (kChunk - 4096), 4096);
  }
  EXPECT_EQ(bf->blocks(), kChunk / store::kCompressedBlockSize);
  EXPECT_GT(bf->hits(), 150u);  // all but the first read of each block
  // Raw and zero slots never go there.
  ExpectRead(e, 0, 2 * kChunk);
  EXPECT_EQ(bf->blocks(), kChunk / store::kCompressedBlockSize);
  // The whole revision, streamed, still equals the image (from the file
  // where it holds the block).
  const uint64_t before = bf->hits();
  ExpectRead(e, 0, image_.size());
  EXPECT_GT(bf->hits(), before);
  // ReadNoWait is served from it too (its pages are in the page cache).
  std::vector<uint8_t> buf(4096);
  ASSERT_OK(e.ReadNoWait(2 * kChunk + 8192, buf));
  EXPECT_TRUE(
      std::equal(buf.begin(), buf.end(), image_.begin() + 2 * kChunk + 8192));
}

// Issue 12: a name means one revision while any connection holds it. A
// multi-connection client (nbdcopy: 4) opening "last" around a backup got
// connections reading two different revisions.
TEST_F(RevisionExportTest, NameMeansOneRevisionWhileHeld) {
  auto p = RepositoryExports::Open(dir_, 8 * kMiB);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto a = (*p)->OpenExport("last", {});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto tag = (*p)->OpenExport("daily", {});
  ASSERT_TRUE(tag.ok()) << tag.status().ToString();
  EXPECT_EQ(tag->get(), a->get());  // one export per revision
  EXPECT_EQ(a->use_count(), 1);     // but "last" is held by a alone

  Revision newer = rev_;
  newer.id = store::NewRevisionId();
  newer.timestamp_us += 1000;
  ASSERT_OK(repo_->Publish(newer, index_));

  auto b = (*p)->OpenExport("last", {});  // "last" is still held by a
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->get(), a->get());
  EXPECT_EQ((*b)->CanonicalName(), rev_.id);
  // Another name resolves afresh: "0" is the new revision.
  auto zero = (*p)->OpenExport("0", {});
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_EQ((*zero)->CanonicalName(), newer.id);
  // The listing sees the new revision at once (the cache is not stale).
  auto list = (*p)->ListExports({});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, newer.id);

  // Once nothing holds "last", it re-resolves.
  a->reset();
  b->reset();
  auto c = (*p)->OpenExport("last", {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->CanonicalName(), newer.id);
  EXPECT_EQ(c->get(), zero->get());
  // "daily" is still held (tag), so it keeps naming the old revision.
  auto d = (*p)->OpenExport("daily", {});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->get(), tag->get());
}

// The last connection to let go of an export unpins its revision (a purge
// may then free its chunks), though the name's entry is still remembered.
TEST_F(RevisionExportTest, LastHolderUnpins) {
  auto p = RepositoryExports::Open(dir_, 8 * kMiB);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto pins = [&] {
    size_t n = 0;
    for (const auto& e :
         std::filesystem::directory_iterator(store::PinsDirName(dir_))) {
      n += e.path().extension() == ".pin";
    }
    return n;
  };
  {
    auto a = (*p)->OpenExport("last", {});
    auto b = (*p)->OpenExport(rev_.id, {});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(pins(), 1u);  // one export, one pin
  }
  EXPECT_EQ(pins(), 0u);
}

// Many threads opening one name at once get one export.
TEST_F(RevisionExportTest, ConcurrentOpensOfOneNameShareOneExport) {
  auto p = RepositoryExports::Open(root_, 8 * kMiB);  // directory mode
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  std::vector<std::shared_ptr<nbd::Export>> got(8);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      auto e = (*p)->OpenExport("repo/last", {});
      if (e.ok()) got[t] = *e;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : got) {
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e.get(), got[0].get());
  }
  EXPECT_EQ(got[0]->CanonicalName(), "repo/" + rev_.id);
}

// ReadNoWait (the server's I/O-thread attempt) never opens a chunk file:
// a chunk not open yet is WouldBlock; zero slots, open chunks with their data
// in the page cache, and cached blocks are served, and equal the image.
TEST_F(RevisionExportTest, ReadNoWaitServesOnlyWhatIsInMemory) {
  auto e = MakeExport(64 * kMiB);
  std::vector<uint8_t> buf(4096);
  EXPECT_TRUE(e->ReadNoWait(100, buf).IsWouldBlock());
  EXPECT_TRUE(e->ReadNoWait(2 * kChunk + 100, buf).IsWouldBlock());
  EXPECT_EQ(readers_->size(), 0u);
  ASSERT_OK(e->ReadNoWait(kChunk + 5, buf));  // the zero slot
  EXPECT_TRUE(
      std::all_of(buf.begin(), buf.end(), [](uint8_t b) { return b == 0; }));
  // A read spanning an open chunk, a zero slot and a closed chunk is WouldBlock
  // as a whole.
  ExpectRead(*e, 0, 10);
  std::vector<uint8_t> span(3 * kChunk);
  EXPECT_TRUE(e->ReadNoWait(0, span).IsWouldBlock());

  ExpectRead(*e, 0, image_.size());  // opens every chunk
  std::mt19937_64 rng(11);
  int served = 0;
  for (int i = 0; i < 300; ++i) {
    const uint64_t len = 1 + rng() % (i % 3 == 0 ? 3 * kBlock : 8192);
    const uint64_t off = rng() % (image_.size() - len);
    std::vector<uint8_t> got(len, 0xAA);
    Status s = e->ReadNoWait(off, got);
    if (s.IsWouldBlock()) continue;  // evicted from the page cache meanwhile
    ASSERT_OK(s);
    ++served;
    ASSERT_TRUE(std::equal(got.begin(), got.end(), image_.begin() + off))
        << "offset " << off << " length " << len;
  }
  EXPECT_GT(served, 250);  // the page cache keeps a 17 MiB test image
}

// ReadToFiles (zero-copy) hands out raw data as checked ranges of chunk
// files and decodes the rest into the buffer; together they are the image.
TEST_F(RevisionExportTest, ReadToFilesDescribesRawDataAsFileRanges) {
  auto e = MakeExport(64 * kMiB);
  const uint64_t len = image_.size() - 100;
  std::vector<uint8_t> buf(len, 0xAA);
  std::vector<nbd::FileExtent> files;
  ASSERT_OK(e->ReadToFiles(50, buf, /*nowait=*/false, &files));
  ASSERT_FALSE(files.empty());
  std::vector<uint8_t> got = buf;
  uint64_t prev_end = 0;
  for (const auto& f : files) {
    ASSERT_GE(f.offset, std::max<uint64_t>(50, prev_end));
    ASSERT_LE(f.offset + f.length, 50 + len);
    ASSERT_TRUE(f.pin);
    prev_end = f.offset + f.length;
    ASSERT_EQ(::pread(f.fd, got.data() + (f.offset - 50), f.length,
                      static_cast<off_t>(f.file_offset)),
              static_cast<ssize_t>(f.length));
  }
  EXPECT_TRUE(std::equal(got.begin(), got.end(), image_.begin() + 50));
  // The compressed slot is decoded into the buffer, not handed out.
  for (const auto& f : files) {
    EXPECT_TRUE(f.offset + f.length <= 2 * kChunk || f.offset >= 3 * kChunk);
  }
  // A damaged raw block fails the read that covers it.
  Damage(0, store::ChunkPrefixSize(kChunk / kBlock) + 3 * kBlock + 7);
  files.clear();
  std::vector<uint8_t> small(kBlock);
  EXPECT_TRUE(e->ReadToFiles(3 * kBlock, small, false, &files).IsCorruption());
}

TEST(BlockCacheTest, RecyclesBlocksOfDifferentSizes) {
  BlockCache cache(64 * kMiB);
  Digest d = Digest::Of(std::vector<uint8_t>{9});
  const uint32_t sizes[] = {100, 16384, 65536, 524288};
  for (uint32_t round = 0; round < 40; ++round) {
    const uint32_t size = sizes[round % 4];
    auto b = cache.NewBlock(size);
    ASSERT_EQ(b->size, size);
    std::fill(b->bytes.get(), b->bytes.get() + size,
              static_cast<uint8_t>(round));
    cache.Put(d, round * 4096, std::move(b));
    ASSERT_LE(cache.bytes(), cache.capacity());
    auto hit = cache.Get(d, round * 4096, size);
    ASSERT_TRUE(hit);
    ASSERT_EQ(hit->size, size);
    EXPECT_EQ(hit->data()[size - 1], static_cast<uint8_t>(round));
  }
}

TEST(BlockCacheTest, EvictsLeastRecentlyUsedWithinCapacity) {
  BlockCache cache(32 * kBlock);  // fewer blocks than are put
  Digest d = Digest::Of(std::vector<uint8_t>{1, 2, 3});
  auto make = [](uint8_t v) {
    auto b = std::make_shared<CachedBlock>(kBlock);
    std::fill(b->bytes.get(), b->bytes.get() + kBlock, v);
    return b;
  };
  for (uint32_t i = 0; i < 100; ++i) {
    cache.Put(d, i * kBlock, make(static_cast<uint8_t>(i)));
    ASSERT_LE(cache.bytes(), cache.capacity());
  }
  // The most recent block is there, with its content; the first is gone.
  auto last = cache.Get(d, 99 * kBlock, kBlock);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->data()[0], 99);
  EXPECT_FALSE(cache.Get(d, 0, kBlock));
  // The size is part of the key: a block of another layout is a miss.
  EXPECT_FALSE(cache.Get(d, 99 * kBlock, 4 * kBlock));

  BlockCache off(0);
  off.Put(d, kBlock, make(1));
  EXPECT_FALSE(off.Get(d, kBlock, kBlock));
  EXPECT_EQ(off.bytes(), 0u);
}

TEST(BlockCacheTest, GetOrFillFillsOnceForConcurrentCallers) {
  BlockCache cache(64 * kMiB);
  const Digest d = Digest::Of(std::vector<uint8_t>{4, 5, 6});
  const uint32_t size = 4 * kMiB;  // a whole 2.x chunk
  std::atomic<int> fills{0};
  std::vector<std::thread> threads;
  std::vector<uint8_t> firsts(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto b = cache.GetOrFill(d, 0, size, [&](CachedBlock& block) {
        ++fills;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::fill(block.bytes.get(), block.bytes.get() + block.size, 42);
        return Status::OK();
      });
      ASSERT_TRUE(b.ok()) << b.status().ToString();
      firsts[t] = (*b)->data()[size - 1];
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fills.load(), 1);
  for (uint8_t v : firsts) EXPECT_EQ(v, 42);
}

TEST(BlockCacheTest, GetOrFillErrorsReachWaitersAndAreNotCached) {
  BlockCache cache(64 * kMiB);
  const Digest d = Digest::Of(std::vector<uint8_t>{7});
  int fills = 0;
  auto bad = [&](CachedBlock&) {
    ++fills;
    return Status::Corruption("damaged", "chunk");
  };
  EXPECT_TRUE(cache.GetOrFill(d, 0, kBlock, bad).status().IsCorruption());
  EXPECT_TRUE(cache.GetOrFill(d, 0, kBlock, bad).status().IsCorruption());
  EXPECT_EQ(fills, 2);
  EXPECT_FALSE(cache.Get(d, 0, kBlock));
}

TEST(BlockCacheTest, SmallCacheStillHoldsWhole4MiBBlocks) {
  // 16 MiB in 16 shards would be 1 MiB each, too small for one 4 MiB block
  // (a decoded 2.x chunk), which would then be decoded on every read.
  BlockCache cache(16 * kMiB);
  const Digest d = Digest::Of(std::vector<uint8_t>{8});
  auto b = cache.NewBlock(4 * kMiB);
  cache.Put(d, 0, std::move(b));
  EXPECT_TRUE(cache.Get(d, 0, 4 * kMiB));
  EXPECT_LE(cache.bytes(), cache.capacity());
  EXPECT_LE(cache.capacity(), 16 * kMiB);
}

TEST(ChunkReaderCacheTest, OpensOnceAndStaysBounded) {
  class NullReader final : public store::ChunkReader {
   public:
    uint64_t PlainSize() const override { return 0; }
    Status Read(uint64_t, std::span<uint8_t>) override { return Status::OK(); }
  };
  ChunkReaderCache cache(16);
  int opens = 0;
  auto opener = [&]() -> Result<ChunkReaderCache::Reader> {
    ++opens;
    return ChunkReaderCache::Reader(std::make_shared<NullReader>());
  };
  std::vector<Digest> digests;
  for (uint8_t i = 0; i < 100; ++i) {
    digests.push_back(Digest::Of(std::vector<uint8_t>{i}));
  }
  ASSERT_TRUE(cache.Get(digests[0], opener).ok());
  ASSERT_TRUE(cache.Get(digests[0], opener).ok());
  EXPECT_EQ(opens, 1);
  for (const auto& d : digests) ASSERT_TRUE(cache.Get(d, opener).ok());
  EXPECT_LE(cache.size(), 16u);
  // Errors are returned, not cached.
  auto fail = []() -> Result<ChunkReaderCache::Reader> {
    return Status::IOError("no");
  };
  Digest other = Digest::Of(std::vector<uint8_t>{200});
  EXPECT_TRUE(cache.Get(other, fail).status().IsIOError());
  ASSERT_TRUE(cache.Get(other, opener).ok());
}

}  // namespace
}  // namespace backy::backup
