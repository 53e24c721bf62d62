#include "store/index.h"

#include "support/test_util.h"

namespace backy::store {
namespace {

Digest D(uint8_t v) {
  std::array<uint8_t, 16> b{};
  b.fill(v);
  return Digest(b);
}

TEST(RevisionIndexTest, SlotsCoverImageWithShortLastSlot) {
  RevisionIndex idx(10 * 1024 * 1024 + 5, kDefaultChunkSize);
  EXPECT_EQ(idx.slot_count(), 3u);
  EXPECT_EQ(idx.SlotLength(0), kDefaultChunkSize);
  EXPECT_EQ(idx.SlotLength(2), 2u * 1024 * 1024 + 5);
  EXPECT_TRUE(idx.IsZero(1));
}

TEST(RevisionIndexTest, EncodeDecodeRoundTrip) {
  RevisionIndex idx(3 * kDefaultChunkSize, kDefaultChunkSize);
  idx.set_slot(0, D(1));
  idx.set_slot(2, D(3));
  auto bytes = idx.Encode();
  auto back = RevisionIndex::Decode(bytes, "t");
  ASSERT_OK(back.status());
  EXPECT_EQ(back->image_size(), idx.image_size());
  EXPECT_EQ(back->slot(0), D(1));
  EXPECT_TRUE(back->IsZero(1));
  EXPECT_EQ(back->slot(2), D(3));
}

TEST(RevisionIndexTest, EmptyImage) {
  RevisionIndex idx(0, kDefaultChunkSize);
  auto back = RevisionIndex::Decode(idx.Encode(), "t");
  ASSERT_OK(back.status());
  EXPECT_EQ(back->slot_count(), 0u);
}

TEST(RevisionIndexTest, AnyFlippedByteIsCorruption) {
  RevisionIndex idx(5 * kDefaultChunkSize, kDefaultChunkSize);
  for (size_t i = 0; i < 5; ++i) idx.set_slot(i, D(static_cast<uint8_t>(i)));
  auto bytes = idx.Encode();
  for (size_t pos = 0; pos < bytes.size(); ++pos) {
    auto bad = bytes;
    bad[pos] ^= 0x10;
    auto r = RevisionIndex::Decode(bad, "idx");
    ASSERT_FALSE(r.ok()) << "flip at " << pos;
    EXPECT_TRUE(r.status().IsCorruption() || r.status().IsNotSupported());
    EXPECT_NE(r.status().ToString().find("idx"), std::string::npos);
  }
}

TEST(RevisionIndexTest, TruncatedOrExtendedIsCorruption) {
  RevisionIndex idx(2 * kDefaultChunkSize, kDefaultChunkSize);
  auto bytes = idx.Encode();
  auto shorter = bytes;
  shorter.pop_back();
  EXPECT_TRUE(RevisionIndex::Decode(shorter, "t").status().IsCorruption());
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_TRUE(RevisionIndex::Decode(longer, "t").status().IsCorruption());
  EXPECT_TRUE(RevisionIndex::Decode({}, "t").status().IsCorruption());
}

TEST(RevisionIndexTest, ResizeKeepsExistingSlots) {
  RevisionIndex idx(3 * kDefaultChunkSize, kDefaultChunkSize);
  idx.set_slot(0, D(1));
  idx.set_slot(2, D(2));
  idx.Resize(5 * kDefaultChunkSize);
  EXPECT_EQ(idx.slot_count(), 5u);
  EXPECT_EQ(idx.slot(2), D(2));
  EXPECT_TRUE(idx.IsZero(4));
  idx.Resize(kDefaultChunkSize + 1);
  EXPECT_EQ(idx.slot_count(), 2u);
  EXPECT_EQ(idx.slot(0), D(1));
}

}  // namespace
}  // namespace backy::store
