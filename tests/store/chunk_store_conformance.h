// The ChunkStore conformance suite (restic's backend/test idea): every
// implementation must pass these. A test binary includes this header once
// and instantiates the suite with its factories:
//   INSTANTIATE_TYPED_TEST_SUITE_P(Mem, ChunkStoreTest, MemFactory);
// A Factory is default-constructible and has
// `std::unique_ptr<ChunkStore> Make()`, giving an empty store each time it
// is constructed (its destructor cleans up).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "store/chunk_store.h"
#include "support/test_util.h"

namespace backy::store {

inline std::vector<uint8_t> RandomData(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(size);
  for (auto& b : v) b = static_cast<uint8_t>(rng() % 7);  // compressible-ish
  return v;
}

template <typename Factory>
class ChunkStoreTest : public ::testing::Test {
 protected:
  ChunkStoreTest() : store_(factory_.Make()) {}
  Factory factory_;
  std::unique_ptr<ChunkStore> store_;
};

TYPED_TEST_SUITE_P(ChunkStoreTest);

TYPED_TEST_P(ChunkStoreTest, PutGetRoundTrip) {
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

TYPED_TEST_P(ChunkStoreTest, SecondPutIsDeduplicated) {
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

TYPED_TEST_P(ChunkStoreTest, RemoveBeforeSyncDropsThePendingChunk) {
  auto data = RandomData(5000, 3);
  Digest d = Digest::Of(data);
  ASSERT_OK(this->store_->Put(d, data).status());
  ASSERT_OK(this->store_->Remove(d));
  ASSERT_OK(this->store_->Sync());
  auto c = this->store_->Contains(d);
  ASSERT_OK(c.status());
  EXPECT_FALSE(*c);
}

TYPED_TEST_P(ChunkStoreTest, RewriteReplacesAChunk) {
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

TYPED_TEST_P(ChunkStoreTest, MissingChunkIsNotFound) {
  auto data = RandomData(10, 3);
  Digest d = Digest::Of(data);
  std::vector<uint8_t> out;
  EXPECT_TRUE(this->store_->Get(d, &out).IsNotFound());
  auto c = this->store_->Contains(d);
  ASSERT_OK(c.status());
  EXPECT_FALSE(*c);
  EXPECT_TRUE(this->store_->Remove(d).IsNotFound());
}

TYPED_TEST_P(ChunkStoreTest, PartialReadsMatch) {
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

TYPED_TEST_P(ChunkStoreTest, ListRemoveQuarantine) {
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

TYPED_TEST_P(ChunkStoreTest, ConcurrentPutsOfSameAndDifferentChunks) {
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

TYPED_TEST_P(ChunkStoreTest, OpenedReaderReadsRanges) {
  auto data = RandomData(3 << 20, 6);
  Digest d = Digest::Of(data);
  ASSERT_OK(this->store_->Put(d, data).status());
  ASSERT_OK(this->store_->Sync());
  auto reader = this->store_->Open(d);
  ASSERT_OK(reader.status());
  EXPECT_EQ((*reader)->PlainSize(), data.size());
  EXPECT_GT((*reader)->BlockSize(), 0u);
  std::mt19937 rng(7);
  for (int i = 0; i < 50; ++i) {
    uint64_t off = rng() % data.size();
    uint64_t len = std::min<uint64_t>(1 + rng() % 70000, data.size() - off);
    std::vector<uint8_t> out(len);
    ASSERT_OK((*reader)->Read(off, out));
    ASSERT_TRUE(std::equal(out.begin(), out.end(), data.begin() + off));
  }
  std::vector<uint8_t> too_far(10);
  EXPECT_TRUE((*reader)->Read(data.size() - 5, too_far).IsInvalidArgument());
  EXPECT_TRUE(
      this->store_->Open(Digest::Of(RandomData(5, 8))).status().IsNotFound());
}

TYPED_TEST_P(ChunkStoreTest, StoredSizeIsWhatPutStored) {
  auto data = RandomData(200000, 9);
  Digest d = Digest::Of(data);
  auto put = this->store_->Put(d, data);
  ASSERT_OK(put.status());
  ASSERT_OK(this->store_->Sync());
  auto size = this->store_->StoredSize(d);
  ASSERT_OK(size.status());
  EXPECT_EQ(*size, put->stored_bytes);
  EXPECT_LT(*size, data.size());  // compressible: zstd blocks
  auto missing = this->store_->StoredSize(Digest::Of(RandomData(5, 8)));
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();
}

REGISTER_TYPED_TEST_SUITE_P(ChunkStoreTest, PutGetRoundTrip,
                            SecondPutIsDeduplicated,
                            RemoveBeforeSyncDropsThePendingChunk,
                            RewriteReplacesAChunk, MissingChunkIsNotFound,
                            PartialReadsMatch, ListRemoveQuarantine,
                            ConcurrentPutsOfSameAndDifferentChunks,
                            OpenedReaderReadsRanges, StoredSizeIsWhatPutStored);

}  // namespace backy::store
