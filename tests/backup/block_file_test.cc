// BlockFile: blocks written are read back exactly, in part and whole; a
// block it does not hold, or whose slot was reused, is a miss, never wrong
// bytes; space stays within the capacity; concurrent readers and writers
// only ever get right bytes.
#include "backup/block_file.h"

#include <atomic>
#include <random>
#include <thread>

#include "support/test_util.h"

namespace backy::backup {
namespace {

constexpr uint32_t kBlock = BlockFile::kSlotSize;

std::vector<uint8_t> Bytes(uint32_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

BlockFile::Key KeyOf(const std::vector<uint8_t>& data, uint32_t offset = 0) {
  return {Digest::Of(data), offset, static_cast<uint32_t>(data.size())};
}

std::unique_ptr<BlockFile> Make(uint64_t capacity) {
  auto f = BlockFile::Create("/tmp", capacity);
  EXPECT_OK(f.status());
  return f.ok() ? std::move(*f) : nullptr;
}

TEST(BlockFileTest, ReadsBackWhatWasPut) {
  auto f = Make(64 << 20);
  ASSERT_NE(f, nullptr);
  auto data = Bytes(kBlock, 1);
  auto key = KeyOf(data);
  std::vector<uint8_t> out(4096);
  auto r = f->Read(key, 0, out, false);
  ASSERT_OK(r.status());
  EXPECT_FALSE(*r);  // not there yet
  f->Put(key, data);
  EXPECT_EQ(f->blocks(), 1u);
  for (uint32_t from : {0u, 100u, 16383u, 16384u, kBlock - 4096}) {
    r = f->Read(key, from, out, false);
    ASSERT_OK(r.status());
    ASSERT_TRUE(*r) << from;
    EXPECT_TRUE(std::equal(out.begin(), out.end(), data.begin() + from));
  }
  std::vector<uint8_t> all(kBlock);
  r = f->Read(key, 0, all, false);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(all, data);
  // Past the block's end: a miss, not a read beyond it.
  r = f->Read(key, kBlock - 10, out, false);
  ASSERT_OK(r.status());
  EXPECT_FALSE(*r);
  EXPECT_EQ(f->hits(), 6u);
}

// The key's size is part of it: a short last block and a 64 KiB block of an
// older chunk are other blocks.
TEST(BlockFileTest, ShortAndSmallBlocks) {
  auto f = Make(64 << 20);
  auto small = Bytes(64 * 1024, 2);
  auto tail = Bytes(1234, 3);
  f->Put(KeyOf(small), small);
  f->Put(KeyOf(tail, 8 << 20), tail);
  std::vector<uint8_t> out(1000);
  auto r = f->Read(KeyOf(tail, 8 << 20), 234, out, false);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_TRUE(std::equal(out.begin(), out.end(), tail.begin() + 234));
  BlockFile::Key other = KeyOf(small);
  other.size = 32 * 1024;
  r = f->Read(other, 0, out, false);
  ASSERT_OK(r.status());
  EXPECT_FALSE(*r);
}

TEST(BlockFileTest, StaysWithinCapacityAndEvicts) {
  auto f = Make(16 * kBlock);  // one slot per shard
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->capacity(), 16u * kBlock);
  std::vector<std::vector<uint8_t>> blocks;
  for (int i = 0; i < 100; ++i) {
    blocks.push_back(Bytes(kBlock, 100 + i));
    f->Put(KeyOf(blocks.back()), blocks.back());
    ASSERT_LE(f->blocks(), 16u);
  }
  // Whatever is still held reads back right; the rest are misses.
  size_t held = 0;
  std::vector<uint8_t> out(8192);
  for (const auto& b : blocks) {
    auto r = f->Read(KeyOf(b), 4096, out, false);
    ASSERT_OK(r.status());
    if (*r) {
      ++held;
      EXPECT_TRUE(std::equal(out.begin(), out.end(), b.begin() + 4096));
    }
  }
  EXPECT_GT(held, 0u);
  EXPECT_LE(held, 16u);
}

TEST(BlockFileTest, TooSmallIsAnError) {
  EXPECT_FALSE(BlockFile::Create("/tmp", kBlock).ok());
  EXPECT_FALSE(BlockFile::Create("/nonexistent-dir", 64 << 20).ok());
}

// Slots are reused under readers: a reader gets the right bytes or a miss.
TEST(BlockFileTest, ConcurrentPutsAndReadsNeverGiveWrongBytes) {
  auto f = Make(32 * kBlock);  // two slots per shard: constant reuse
  std::vector<std::vector<uint8_t>> blocks;
  for (int i = 0; i < 64; ++i) blocks.push_back(Bytes(kBlock, 1000 + i));
  std::atomic<int> wrong{0};
  std::atomic<int> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint8_t> out(4096);
      for (int i = 0; i < 3000; ++i) {
        const auto& b = blocks[rng() % blocks.size()];
        if (rng() % 4 == 0) {
          f->Put(KeyOf(b), b);
          continue;
        }
        const uint32_t from = static_cast<uint32_t>(rng() % (kBlock - 4096));
        auto r = f->Read(KeyOf(b), from, out, false);
        if (r.ok() && *r) {
          ++hits;
          if (!std::equal(out.begin(), out.end(), b.begin() + from)) ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(hits.load(), 0);
}

}  // namespace
}  // namespace backy::backup
