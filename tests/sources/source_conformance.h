// The Source contract (src/sources/source.h) as a type-parameterised gtest
// suite: every Source implementation instantiates it with a harness that
// makes the image behind the source (restic's backend test suite).
//
// A harness H provides:
//   static constexpr bool kDiffs;  // CanDiffFrom() a base it has seen
//   void SetUp();                  // may GTEST_SKIP() (no cluster)
//   void TearDown();
//   void WriteImage(const std::vector<uint8_t>& bytes);  // the image is now
//                                  // exactly `bytes` (size included)
//   Source* NewSource();           // a source for the next backup; owned
//                                  // by the harness, Begin() not yet called
//   Source* NewMissingSource();    // a source whose image does not exist
// Instantiated in source_conformance_test.cc (FileSource, FakeSource) and,
// under the ceph label, in rbd_source_test.cc (RbdSource).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sources/source.h"
#include "store/extent.h"
#include "store/status.h"
#include "support/test_util.h"

namespace backy::sources::conformance {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;
// Two whole 4 MiB objects, then a partial one that ends off any block
// boundary: reads near Size() cross a short tail.
inline constexpr uint64_t kImageSize = 9 * kMiB + 4608;

// Deterministic bytes, never zero, different for each seed.
inline void Fill(std::vector<uint8_t>* image, uint64_t offset, uint64_t length,
                 uint8_t seed) {
  for (uint64_t pos = offset; pos < offset + length; ++pos) {
    (*image)[pos] =
        static_cast<uint8_t>((pos * 131 + (pos >> 12) * 7 + seed * 29) | 1);
  }
}

// The first image: data, a zero run of 4 MiB (a hole where the harness can
// make one), a small block of data, and data up to the tail.
inline std::vector<uint8_t> FirstImage() {
  std::vector<uint8_t> image(kImageSize, 0);
  Fill(&image, 0, kMiB, 1);
  Fill(&image, 5 * kMiB, 4096, 1);
  Fill(&image, 8 * kMiB, kImageSize - 8 * kMiB, 1);
  return image;
}

// The first image changed: its first MiB zeroed, the small block
// rewritten, the last 100 bytes rewritten.
inline std::vector<uint8_t> SecondImage() {
  std::vector<uint8_t> image = FirstImage();
  std::memset(image.data(), 0, kMiB);
  Fill(&image, 5 * kMiB, 4096, 2);
  Fill(&image, kImageSize - 100, 100, 2);
  return image;
}

// Checks that `extents` are sorted, non-empty, non-overlapping and within
// `size`.
inline void ExpectWellFormed(const ExtentList& extents, uint64_t size) {
  uint64_t prev_end = 0;
  for (const Extent& e : extents) {
    EXPECT_GT(e.length, 0u) << "at " << e.offset;
    EXPECT_GE(e.offset, prev_end) << "unsorted or overlapping at " << e.offset;
    EXPECT_LE(e.end(), size) << "extent past the end at " << e.offset;
    prev_end = e.end();
  }
}

// Whether [pos, pos + 1) lies in an extent of `extents` of kind `kind`.
inline bool Covered(const ExtentList& extents, uint64_t pos,
                    Extent::Kind kind) {
  for (const Extent& e : extents) {
    if (e.offset <= pos && pos < e.end() && e.kind == kind) return true;
  }
  return false;
}

// Reads [offset, offset + length) of `src`.
inline std::vector<uint8_t> ReadRange(Source* src, uint64_t offset,
                                      uint64_t length) {
  std::vector<uint8_t> buf(length, 0xEE);
  EXPECT_OK(src->Read(offset, buf));
  return buf;
}

inline std::vector<uint8_t> Slice(const std::vector<uint8_t>& image,
                                  uint64_t offset, uint64_t length) {
  return {image.begin() + offset, image.begin() + offset + length};
}

template <typename Harness>
class SourceConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h_.SetUp();
    if (IsSkipped()) return;
    h_.WriteImage(first_);
  }
  void TearDown() override { h_.TearDown(); }

  // A new source on the image, begun as revision `id`.
  Source* Begun(const std::string& id) {
    Source* src = h_.NewSource();
    EXPECT_OK(src->Begin(id));
    return src;
  }

  Harness h_;
  const std::vector<uint8_t> first_ = FirstImage();
};

TYPED_TEST_SUITE_P(SourceConformanceTest);

TYPED_TEST_P(SourceConformanceTest, MissingImageIsNotFoundNamingIt) {
  Source* src = this->h_.NewMissingSource();
  const Status s = src->Begin("r1");
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.ToString().find(src->Name()), std::string::npos)
      << s.ToString() << " does not name " << src->Name();
}

TYPED_TEST_P(SourceConformanceTest, SizeIsTheImageSize) {
  Source* src = this->Begun("r1");
  EXPECT_EQ(src->Size(), kImageSize);
  src->Abort();
}

TYPED_TEST_P(SourceConformanceTest, FullExtentsListEveryNonZeroByte) {
  Source* src = this->Begun("r1");
  ExtentList extents;
  ASSERT_OK(src->Extents("", &extents));
  ExpectWellFormed(extents, kImageSize);
  // Every non-zero byte is in a kData extent (checked at the edges of each
  // data run and every 4 KiB in between).
  for (uint64_t pos = 0; pos < kImageSize; ++pos) {
    const bool edge = pos == 0 || pos + 1 == kImageSize ||
                      (this->first_[pos] != 0) != (this->first_[pos - 1] != 0);
    if (this->first_[pos] == 0 || (!edge && pos % 4096 != 0)) continue;
    ASSERT_TRUE(Covered(extents, pos, Extent::Kind::kData))
        << "non-zero byte at " << pos << " not listed as data";
  }
  // What is listed as kZero reads as zeros.
  for (const Extent& e : extents) {
    if (e.kind != Extent::Kind::kZero) continue;
    EXPECT_EQ(ReadRange(src, e.offset, e.length),
              std::vector<uint8_t>(e.length, 0))
        << "kZero extent at " << e.offset << " holds data";
  }
  src->Abort();
}

TYPED_TEST_P(SourceConformanceTest, ReadReturnsTheImageAtAnyOffset) {
  Source* src = this->Begun("r1");
  const uint64_t offsets[] = {0,
                              1,
                              4095,
                              kMiB - 7,
                              5 * kMiB,
                              8 * kMiB - 3,
                              kImageSize - 4096,
                              kImageSize - 1};
  for (uint64_t offset : offsets) {
    for (uint64_t length : {uint64_t{1}, uint64_t{4096}, uint64_t{65539}}) {
      length = std::min(length, kImageSize - offset);
      EXPECT_EQ(ReadRange(src, offset, length),
                Slice(this->first_, offset, length))
          << length << " bytes at " << offset;
    }
  }
  // The whole image, in pieces that do not divide it.
  constexpr uint64_t kPiece = kMiB + 13;
  for (uint64_t offset = 0; offset < kImageSize; offset += kPiece) {
    const uint64_t length = std::min(kPiece, kImageSize - offset);
    ASSERT_EQ(ReadRange(src, offset, length),
              Slice(this->first_, offset, length))
        << length << " bytes at " << offset;
  }
  src->Abort();
}

TYPED_TEST_P(SourceConformanceTest, ReadPastTheEndGivesZeros) {
  Source* src = this->Begun("r1");
  std::vector<uint8_t> want = Slice(this->first_, kImageSize - 100, 100);
  want.resize(4096, 0);
  EXPECT_EQ(ReadRange(src, kImageSize - 100, 4096), want);
  EXPECT_EQ(ReadRange(src, kImageSize, 512), std::vector<uint8_t>(512, 0));
  src->Abort();
}

TYPED_TEST_P(SourceConformanceTest, ConcurrentReadsSeeTheImage) {
  Source* src = this->Begun("r1");
  constexpr int kThreads = 4;
  constexpr uint64_t kPiece = 256 * 1024;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t offset = t * kPiece; offset < kImageSize;
           offset += kThreads * kPiece) {
        const uint64_t length = std::min(kPiece, kImageSize - offset);
        std::vector<uint8_t> buf(length);
        if (!src->Read(offset, buf).ok() ||
            buf != Slice(this->first_, offset, length)) {
          ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches, std::vector<int>(kThreads, 0));
  src->Abort();
}

TYPED_TEST_P(SourceConformanceTest, BytesReadCountsReadsInsideTheImage) {
  Source* src = this->Begun("r1");
  ReadRange(src, 4096, 65536);
  EXPECT_EQ(src->bytes_read(), 65536u);
  src->Abort();
}

TYPED_TEST_P(SourceConformanceTest, CheckUnchangedAcceptsAnUntouchedImage) {
  Source* src = this->Begun("r1");
  ReadRange(src, 0, kMiB);
  EXPECT_OK(src->CheckUnchanged());
  EXPECT_OK(src->Commit("r1"));
}

TYPED_TEST_P(SourceConformanceTest, DiffFromABaseListsEveryChange) {
  Source* first = this->Begun("r1");
  ASSERT_OK(first->Commit("r1"));
  const std::vector<uint8_t> second_image = SecondImage();
  this->h_.WriteImage(second_image);
  Source* second = this->Begun("r2");
  EXPECT_FALSE(second->CanDiffFrom("never-made"));
  if (!TypeParam::kDiffs) {
    EXPECT_FALSE(second->CanDiffFrom("r1"));
    second->Abort();
    return;
  }
  ASSERT_TRUE(second->CanDiffFrom("r1"));
  ExtentList extents;
  ASSERT_OK(second->Extents("r1", &extents));
  ExpectWellFormed(extents, kImageSize);
  // Unlisted ranges are unchanged: every changed byte is listed.
  for (uint64_t pos = 0; pos < kImageSize; ++pos) {
    if (this->first_[pos] == second_image[pos]) continue;
    ASSERT_TRUE(Covered(extents, pos, Extent::Kind::kData) ||
                Covered(extents, pos, Extent::Kind::kZero))
        << "changed byte at " << pos << " not listed";
  }
  // Listed ranges read as the new image; kZero ones are zeros.
  for (const Extent& e : extents) {
    const std::vector<uint8_t> got = ReadRange(second, e.offset, e.length);
    EXPECT_EQ(got, Slice(second_image, e.offset, e.length))
        << "extent at " << e.offset;
    if (e.kind == Extent::Kind::kZero) {
      EXPECT_EQ(got, std::vector<uint8_t>(e.length, 0))
          << "kZero extent at " << e.offset << " holds data";
    }
  }
  ASSERT_OK(second->Commit("r2"));
}

REGISTER_TYPED_TEST_SUITE_P(
    SourceConformanceTest, MissingImageIsNotFoundNamingIt, SizeIsTheImageSize,
    FullExtentsListEveryNonZeroByte, ReadReturnsTheImageAtAnyOffset,
    ReadPastTheEndGivesZeros, ConcurrentReadsSeeTheImage,
    BytesReadCountsReadsInsideTheImage, CheckUnchangedAcceptsAnUntouchedImage,
    DiffFromABaseListsEveryChange);

}  // namespace backy::sources::conformance
