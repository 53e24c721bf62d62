#include "store/chunk_format.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "store/coding.h"
#include "support/test_util.h"

namespace backy::store {
namespace {

std::vector<uint8_t> MixedData(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(size);
  for (size_t i = 0; i < size; ++i) {
    // First half random, second half text-like (compressible).
    v[i] = i < size / 2 ? static_cast<uint8_t>(rng())
                        : static_cast<uint8_t>("backup log line "[i % 16]);
  }
  return v;
}

class ChunkFormatTest : public ::testing::Test {
 protected:
  void Encode(const std::vector<uint8_t>& plain, CompressionOptions opt = {}) {
    digest_ = Digest::Of(plain);
    ChunkEncoder enc(opt);
    enc.Encode(digest_, plain, &file_);
  }
  Digest digest_;
  std::vector<uint8_t> file_;
};

TEST_F(ChunkFormatTest, RoundTripsFullChunk) {
  auto plain = MixedData(4 << 20, 1);
  Encode(plain);
  std::vector<uint8_t> out;
  ASSERT_OK(DecodeChunk(file_, digest_, &out, "t"));
  EXPECT_EQ(out, plain);
}

TEST_F(ChunkFormatTest, CompressesTextButStoresRandomRaw) {
  auto plain = MixedData(4 << 20, 2);
  Encode(plain);
  auto layout = ParseChunkLayout(file_, "t");
  ASSERT_OK(layout.status());
  EXPECT_EQ(layout->blocks.front().codec, BlockCodec::kRaw);
  EXPECT_EQ(layout->blocks.back().codec, BlockCodec::kZstd);
  EXPECT_LT(file_.size(), plain.size() * 3 / 4);
}

TEST_F(ChunkFormatTest, UncompressedOptionStoresEverythingRaw) {
  auto plain = MixedData(1 << 20, 3);
  Encode(plain, CompressionOptions{false, 1});
  auto layout = ParseChunkLayout(file_, "t");
  ASSERT_OK(layout.status());
  for (const auto& b : layout->blocks) EXPECT_EQ(b.codec, BlockCodec::kRaw);
}

TEST_F(ChunkFormatTest, BlockSizeFollowsCompressibility) {
  std::mt19937_64 rng(5);
  std::vector<uint8_t> random(kMaxChunkSize);
  for (auto& b : random) b = static_cast<uint8_t>(rng());
  Encode(random);
  auto layout = ParseChunkLayout(file_, "t");
  ASSERT_OK(layout.status());
  EXPECT_EQ(layout->header.block_size, kChunkBlockSize);
  EXPECT_EQ(layout->blocks.size(), kMaxChunkSize / kChunkBlockSize);

  std::vector<uint8_t> text(kMaxChunkSize);
  for (size_t i = 0; i < text.size(); ++i) text[i] = "some log line\n"[i % 14];
  Encode(text);
  layout = ParseChunkLayout(file_, "t");
  ASSERT_OK(layout.status());
  EXPECT_EQ(layout->header.block_size, kCompressedBlockSize);
}

// Random data with one zero block in its second 64 KiB window: the window
// compresses, so its blocks are tried one by one and the zero block is
// stored compressed, the random ones raw.
TEST_F(ChunkFormatTest, CompressesSmallBlocksInsideARandomChunk) {
  std::mt19937_64 rng(6);
  std::vector<uint8_t> plain(1 << 20);
  for (auto& b : plain) b = static_cast<uint8_t>(rng());
  std::fill(plain.begin() + kChunkProbeSize,
            plain.begin() + kChunkProbeSize + kChunkBlockSize, 0);
  Encode(plain);
  auto layout = ParseChunkLayout(file_, "t");
  ASSERT_OK(layout.status());
  ASSERT_EQ(layout->header.block_size, kChunkBlockSize);
  const size_t zero_block = kChunkProbeSize / kChunkBlockSize;
  for (size_t i = 0; i < layout->blocks.size(); ++i) {
    EXPECT_EQ(layout->blocks[i].codec,
              i == zero_block ? BlockCodec::kZstd : BlockCodec::kRaw)
        << "block " << i;
  }
  std::vector<uint8_t> out;
  ASSERT_OK(DecodeChunk(file_, digest_, &out, "t"));
  EXPECT_EQ(out, plain);
}

// A chunk as older versions wrote it (raw 64 KiB blocks), built by hand
// from the layout in man/backy-store.5: readers take the block size from
// the header, so such chunks stay readable.
TEST_F(ChunkFormatTest, DecodesChunksOfOtherBlockSizes) {
  for (uint32_t bs : {4096u, 65536u, 1u << 20}) {
    auto plain = MixedData(1000000, bs);
    const Digest digest = Digest::Of(plain);
    const uint32_t n = static_cast<uint32_t>((plain.size() + bs - 1) / bs);
    std::vector<uint8_t> file(ChunkPrefixSize(n) + plain.size());
    std::memcpy(file.data(), kChunkMagic, 8);
    EncodeFixed32(file.data() + 8, kChunkFormatVersion);
    EncodeFixed32(file.data() + 12, static_cast<uint32_t>(plain.size()));
    EncodeFixed32(file.data() + 16, bs);
    EncodeFixed32(file.data() + 20, n);
    std::memcpy(file.data() + 24, digest.bytes().data(), Digest::kSize);
    for (uint32_t i = 0; i < n; ++i) {
      const size_t off = static_cast<size_t>(i) * bs;
      const size_t len = std::min<size_t>(bs, plain.size() - off);
      uint8_t* e = file.data() + kChunkHeaderSize + kBlockEntrySize * i;
      EncodeFixed32(e, static_cast<uint32_t>(len));
      EncodeFixed32(e + 4, static_cast<uint32_t>(BlockCodec::kRaw));
      EncodeFixed64(e + 8, XXH3_64bits(plain.data() + off, len));
    }
    std::memcpy(file.data() + ChunkPrefixSize(n), plain.data(), plain.size());
    EncodeFixed64(file.data() + kHeaderChecksumOffset,
                  HeaderChecksum(file.data(), ChunkPrefixSize(n)));

    std::vector<uint8_t> out;
    ASSERT_OK(DecodeChunk(file, digest, &out, "t"));
    EXPECT_EQ(out, plain) << "block size " << bs;
    auto layout = ParseChunkLayout(file, "t");
    ASSERT_OK(layout.status());
    std::vector<uint8_t> part(200);
    const uint64_t at = std::min<uint64_t>(bs, plain.size() / 2) - 50;
    ASSERT_OK(DecodeRange(*layout, 0, file, at, part, "t"));
    EXPECT_TRUE(std::equal(part.begin(), part.end(), plain.begin() + at));
  }
}

TEST_F(ChunkFormatTest, ShortChunkWithPartialLastBlock) {
  auto plain = MixedData(100000, 4);
  Encode(plain);
  std::vector<uint8_t> out;
  ASSERT_OK(DecodeChunk(file_, digest_, &out, "t"));
  EXPECT_EQ(out, plain);
}

TEST_F(ChunkFormatTest, DecodesArbitraryRanges) {
  auto plain = MixedData(4 << 20, 5);
  Encode(plain);
  auto layout = ParseChunkLayout(file_, "t");
  ASSERT_OK(layout.status());
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    uint64_t off = rng() % plain.size();
    uint64_t len = 1 + rng() % std::min<uint64_t>(300000, plain.size() - off);
    std::vector<uint8_t> out(len);
    ASSERT_OK(DecodeRange(*layout, 0, file_, off, out, "t"));
    ASSERT_TRUE(std::equal(out.begin(), out.end(), plain.begin() + off))
        << off << "+" << len;
  }
}

TEST_F(ChunkFormatTest, EveryFlippedByteIsDetected) {
  auto plain = MixedData(256 << 10, 6);
  Encode(plain);
  // Flip bytes across header, table, raw and compressed data.
  for (size_t pos = 0; pos < file_.size(); pos += 997) {
    auto bad = file_;
    bad[pos] ^= 0x40;
    std::vector<uint8_t> out;
    Status s = DecodeChunk(bad, digest_, &out, "t");
    EXPECT_FALSE(s.ok()) << "flip at " << pos << " not detected";
    EXPECT_TRUE(s.IsCorruption() || s.IsNotSupported()) << s.ToString();
  }
}

TEST_F(ChunkFormatTest, WrongExpectedDigestIsCorruption) {
  auto plain = MixedData(4096, 8);
  Encode(plain);
  std::vector<uint8_t> out;
  Status s = DecodeChunk(file_, Digest::Of(MixedData(10, 9)), &out, "t");
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
}

TEST_F(ChunkFormatTest, TruncatedFileIsCorruption) {
  Encode(MixedData(300000, 10));
  file_.resize(file_.size() - 1);
  std::vector<uint8_t> out;
  EXPECT_TRUE(DecodeChunk(file_, digest_, &out, "t").IsCorruption());
  file_.resize(10);
  EXPECT_TRUE(DecodeChunk(file_, digest_, &out, "t").IsCorruption());
}

TEST(DigestTest, MatchesXxhsumCanonicalForm) {
  // `printf abc | xxhsum -H2` prints 06b05ab6733a618578af5f94892f3950.
  const char* abc = "abc";
  Digest d = Digest::Of({reinterpret_cast<const uint8_t*>(abc), 3});
  EXPECT_EQ(d.Hex(), "06b05ab6733a618578af5f94892f3950");
  auto back = Digest::FromHex(d.Hex());
  ASSERT_OK(back.status());
  EXPECT_EQ(*back, d);
  EXPECT_FALSE(Digest::FromHex("xyz").ok());
}

TEST(DigestTest, IsAllZero) {
  std::vector<uint8_t> v(100003, 0);
  EXPECT_TRUE(IsAllZero(v));
  for (size_t pos : {0ul, 1ul, 63ul, 64ul, 50000ul, 100002ul}) {
    v[pos] = 1;
    EXPECT_FALSE(IsAllZero(v)) << pos;
    v[pos] = 0;
  }
}

}  // namespace
}  // namespace backy::store
