// Tests for the backy 2.x chunk codec (src/store/legacy_chunk.h): the hash's
// test vector, round trips, damage, and the genuine chunk files of the 2.x
// repositories in tests/data/legacy-backy (a copy of ../shared/legacy-backy).
#include "store/legacy_chunk.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "store/chunk_format.h"
#include "support/test_util.h"

namespace backy::store {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> Bytes(std::string_view s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

// 4 MiB like a VM image's: text, random bytes, zeros.
std::vector<uint8_t> MixedChunk() {
  std::vector<uint8_t> data;
  data.reserve(kMaxChunkSize);
  std::mt19937 rng(7);
  while (data.size() < kMaxChunkSize / 2) {
    const std::string line =
        "line " + std::to_string(data.size()) + " of /etc/fstab-like text\n";
    data.insert(data.end(), line.begin(), line.end());
  }
  while (data.size() < 3 * kMaxChunkSize / 4) data.push_back(rng() & 0xff);
  data.resize(kMaxChunkSize, 0);
  return data;
}

TEST(LegacyChunkTest, HashMatchesTheTestVector) {
  // From ../shared/legacy-backy/README.md: MurmurHash3 x64_128 of "foo".
  EXPECT_EQ(LegacyChunkHash(Bytes("foo")), "6145f501578671e2877dba2be487af7e");
}

TEST(LegacyChunkTest, RoundTripsFullShortAndEmptyChunks) {
  const auto mixed = MixedChunk();
  for (size_t size :
       {size_t{kMaxChunkSize}, size_t{1} << 20, size_t{12345}, size_t{0}}) {
    std::span<const uint8_t> plain(mixed.data(), size);
    std::vector<uint8_t> file, back;
    ASSERT_OK(EncodeLegacyChunk(plain, &file));
    ASSERT_OK(DecodeLegacyChunk(file, LegacyChunkHash(plain), "c", &back));
    EXPECT_TRUE(
        std::equal(back.begin(), back.end(), plain.begin(), plain.end()))
        << size;
  }
}

class LegacyChunkDamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    plain_ = MixedChunk();
    hash_ = LegacyChunkHash(plain_);
    ASSERT_OK(EncodeLegacyChunk(plain_, &file_));
  }
  // Decoding `file` must fail as Corruption naming the chunk, with nothing
  // handed out.
  void ExpectCorruption(const std::vector<uint8_t>& file,
                        const std::string& hash, const std::string& what) {
    std::vector<uint8_t> out(3, 1);
    Status s =
        DecodeLegacyChunk(file, hash, "REPO/chunks/ab/x.chunk.lzo", &out);
    EXPECT_TRUE(s.IsCorruption()) << what << ": " << s.ToString();
    EXPECT_NE(s.ToString().find("REPO/chunks/ab/x.chunk.lzo"),
              std::string::npos)
        << s.ToString();
    EXPECT_TRUE(out.empty()) << what;
  }
  std::vector<uint8_t> plain_, file_;
  std::string hash_;
};

TEST_F(LegacyChunkDamageTest, FlippedBytesAreCorruption) {
  // Every 97th byte of the stream, one at a time: LZO errors and hash
  // mismatches both count, wrong data never comes out.
  for (size_t i = kLegacyChunkHeaderSize; i < file_.size();
       i += file_.size() / 97) {
    auto bad = file_;
    bad[i] ^= 0x40;
    ExpectCorruption(bad, hash_, "flip at " + std::to_string(i));
  }
}

TEST_F(LegacyChunkDamageTest, TruncatedAndExtendedStreamsAreCorruption) {
  for (size_t keep :
       {size_t{0}, size_t{4}, size_t{5}, file_.size() / 2, file_.size() - 1}) {
    ExpectCorruption(std::vector<uint8_t>(file_.begin(), file_.begin() + keep),
                     hash_, "truncated to " + std::to_string(keep));
  }
  auto longer = file_;
  longer.push_back(0);
  ExpectCorruption(longer, hash_, "a trailing byte");
}

TEST_F(LegacyChunkDamageTest, BadHeaderIsCorruption) {
  auto bad = file_;
  bad[0] = 0xF1;
  ExpectCorruption(bad, hash_, "magic");
  // A length over 4 MiB is refused before anything is allocated for it.
  bad = file_;
  bad[1] = 0xFF;
  ExpectCorruption(bad, hash_, "length 4 GiB");
  // A length that differs from the stream's.
  bad = file_;
  bad[4] ^= 1;
  ExpectCorruption(bad, hash_, "length off by one");
}

TEST_F(LegacyChunkDamageTest, WrongHashIsCorruption) {
  ExpectCorruption(file_, std::string(32, '0'), "hash");
}

// The genuine 2.x files: every chunk decodes to the hash in its name, and
// encoding the plain bytes again gives the same file (python-lzo's
// compress() is LZO1X-1 too), so a test helper writing 2.x repositories
// writes what 2.x wrote.
TEST(LegacyChunkFixtureTest, GenuineChunksDecodeToTheirNames) {
  const fs::path fixtures =
      fs::path(BACKY_SOURCE_DIR) / "tests" / "data" / "legacy-backy";
  ASSERT_TRUE(fs::is_directory(fixtures)) << fixtures;
  int checked = 0;
  for (const auto& e : fs::recursive_directory_iterator(fixtures)) {
    const std::string name = e.path().filename().string();
    if (!name.ends_with(".chunk.lzo")) continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::vector<uint8_t> file((std::istreambuf_iterator<char>(in)), {});
    std::vector<uint8_t> plain, again;
    ASSERT_OK(
        DecodeLegacyChunk(file, name.substr(0, 32), e.path().string(), &plain));
    EXPECT_LE(plain.size(), kMaxChunkSize);
    ASSERT_OK(EncodeLegacyChunk(plain, &again));
    EXPECT_EQ(again, file) << e.path();
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace backy::store
