#include "nbd/cow_export.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "nbd/mem_export.h"
#include "support/test_util.h"

namespace backy::nbd {
namespace {

constexpr uint64_t kB = CowExport::kBlock;

class CowExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Base: 16 blocks plus a short tail; blocks 4..7 are zeros.
    base_data_.resize(16 * kB + 100);
    std::mt19937 rng(42);
    for (auto& b : base_data_) b = static_cast<uint8_t>(rng() | 1);
    std::fill(base_data_.begin() + 4 * kB, base_data_.begin() + 8 * kB, 0);
    base_ = std::make_shared<MemExport>(base_data_, false, "base image");
    cow_ = std::make_unique<CowExport>(base_, ::testing::TempDir());
    model_ = base_data_;
  }

  // Applies the same write to the export and to the model.
  void Write(uint64_t off, size_t len, uint8_t fill) {
    std::vector<uint8_t> d(len, fill);
    ASSERT_OK(cow_->Write(off, d));
    std::fill(model_.begin() + off, model_.begin() + off + len, fill);
  }
  void Zero(uint64_t off, size_t len) {
    ASSERT_OK(cow_->WriteZeroes(off, len));
    std::fill(model_.begin() + off, model_.begin() + off + len, 0);
  }
  void ExpectMatchesModel() {
    std::vector<uint8_t> all(cow_->Size());
    ASSERT_OK(cow_->Read(0, all));
    ASSERT_EQ(all, model_);
    // Unaligned reads crossing state boundaries, too.
    for (uint64_t off : {1ul, kB - 3, 3 * kB + 17, 15 * kB + 4000}) {
      const size_t len = std::min<uint64_t>(2 * kB + 5, cow_->Size() - off);
      std::vector<uint8_t> buf(len);
      ASSERT_OK(cow_->Read(off, buf));
      ASSERT_TRUE(std::equal(buf.begin(), buf.end(), model_.begin() + off))
          << "at " << off;
    }
  }

  std::vector<uint8_t> base_data_, model_;
  std::shared_ptr<MemExport> base_;
  std::unique_ptr<CowExport> cow_;
};

TEST_F(CowExportTest, AdvertisesWritableSingleConnection) {
  EXPECT_FALSE(cow_->IsReadOnly());
  EXPECT_FALSE(cow_->CanMultiConn());
  EXPECT_EQ(cow_->Size(), base_->Size());
  EXPECT_EQ(cow_->Description(), "base image");
}

TEST_F(CowExportTest, ReadsBaseUntilWritten) { ExpectMatchesModel(); }

TEST_F(CowExportTest, WritesAreVisibleAndBaseUnchanged) {
  Write(10, 20, 0xaa);               // partial first block
  Write(2 * kB, 2 * kB, 0xbb);       // whole blocks
  Write(5 * kB - 7, kB + 14, 0xcc);  // crosses into a zero block
  Write(16 * kB + 50, 50, 0xdd);     // short tail block
  ExpectMatchesModel();
  EXPECT_EQ(base_->Contents(), base_data_);
}

TEST_F(CowExportTest, WriteZeroesAndTrim) {
  Write(0, 3 * kB, 0x11);
  Zero(kB + 100, kB);    // partial blocks: zero-filled
  Zero(8 * kB, 2 * kB);  // whole base blocks: become zero
  ExpectMatchesModel();
  ASSERT_OK(cow_->Trim(10 * kB, kB));  // whole block: reads as zeros now
  std::vector<uint8_t> buf(kB);
  ASSERT_OK(cow_->Read(10 * kB, buf));
  EXPECT_EQ(buf, std::vector<uint8_t>(kB, 0));
  EXPECT_EQ(base_->Contents(), base_data_);
}

TEST_F(CowExportTest, BlockStatusMergesOverlayAndBase) {
  Write(kB, kB, 0x22);  // data over base data
  Zero(9 * kB, kB);     // zero over base data
  std::vector<ExportExtent> ext;
  uint64_t pos = 0;
  while (pos < cow_->Size()) {
    const size_t before = ext.size();
    ASSERT_OK(cow_->BlockStatus(pos, cow_->Size() - pos, &ext));
    ASSERT_GT(ext.size(), before);
    pos = ext.back().end();
  }
  // Expected: data [0,4B) zero [4B,8B) data [8B,9B) zero [9B,10B) data rest.
  std::vector<ExportExtent> merged;
  for (const auto& e : ext) {
    if (!merged.empty() && merged.back().zero == e.zero &&
        merged.back().end() == e.offset) {
      merged.back().length += e.length;
    } else {
      merged.push_back(e);
    }
  }
  ASSERT_EQ(merged.size(), 5u);
  EXPECT_EQ(merged[0].end(), 4 * kB);
  EXPECT_FALSE(merged[0].zero);
  EXPECT_TRUE(merged[1].zero);
  EXPECT_EQ(merged[1].end(), 8 * kB);
  EXPECT_EQ(merged[3].offset, 9 * kB);
  EXPECT_TRUE(merged[3].zero);
  EXPECT_EQ(merged[4].end(), cow_->Size());
}

TEST_F(CowExportTest, RandomOperationsMatchModel) {
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const uint64_t off = rng() % cow_->Size();
    const size_t len =
        1 + rng() % std::min<uint64_t>(3 * kB, cow_->Size() - off);
    if (rng() % 3 == 0) {
      Zero(off, len);
    } else {
      Write(off, len, static_cast<uint8_t>(rng()));
    }
  }
  ExpectMatchesModel();
  EXPECT_EQ(base_->Contents(), base_data_);
}

TEST_F(CowExportTest, ConcurrentReadersDuringWrites) {
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    std::vector<uint8_t> buf(kB);
    while (!stop) {
      // Block 12 is only ever all-base or all-0x5a.
      if (!cow_->Read(12 * kB, buf).ok()) ++bad;
      const bool is_base =
          std::equal(buf.begin(), buf.end(), base_data_.begin() + 12 * kB);
      const bool is_new = std::all_of(buf.begin(), buf.end(),
                                      [](uint8_t b) { return b == 0x5a; });
      if (!is_base && !is_new) ++bad;
    }
  });
  for (int i = 0; i < 200; ++i) Write(0, kB, static_cast<uint8_t>(i));
  Write(12 * kB, kB, 0x5a);
  for (int i = 0; i < 200; ++i) Write(kB, kB, static_cast<uint8_t>(i));
  stop = true;
  reader.join();
  EXPECT_EQ(bad, 0);
  ExpectMatchesModel();
}

}  // namespace
}  // namespace backy::nbd
