#include "store/filename.h"

#include <gtest/gtest.h>

namespace backy::store {
namespace {

Digest SomeDigest() {
  return *Digest::FromHex("0123456789abcdef0123456789abcdef");
}

TEST(FileNameTest, RepositoryPaths) {
  EXPECT_EQ(ConfigFileName("/r"), "/r/config");
  EXPECT_EQ(WriterLockFileName("/r"), "/r/lock");
  EXPECT_EQ(PurgeLockFileName("/r"), "/r/purge.lock");
  EXPECT_EQ(TmpDirName("/r"), "/r/tmp");
  EXPECT_EQ(ChunksDirName("/r"), "/r/chunks");
  EXPECT_EQ(QuarantineDirName("/r"), "/r/quarantine");
  EXPECT_EQ(RevisionsDirName("/r"), "/r/revisions");
  EXPECT_EQ(RevisionFileName("/r", "abc"), "/r/revisions/abc.rev");
  EXPECT_EQ(IndexFileName("/r", "abc"), "/r/revisions/abc.index");
}

TEST(FileNameTest, ChunkNamesRoundTrip) {
  const Digest d = SomeDigest();
  EXPECT_EQ(ChunkPrefixDirName("/r/chunks", d), "/r/chunks/01");
  const std::string path = ChunkFileName("/r/chunks", d);
  EXPECT_EQ(path, "/r/chunks/01/0123456789abcdef0123456789abcdef.chunk");
  EXPECT_EQ(QuarantinedChunkFileName("/r/quarantine", d),
            "/r/quarantine/0123456789abcdef0123456789abcdef.chunk");
  // What a listing of chunks/ and chunks/01/ finds parses back.
  EXPECT_TRUE(IsChunkPrefixDirName("01"));
  const std::string base = path.substr(path.rfind('/') + 1);
  auto parsed = ParseChunkFileName(base);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(*parsed, d);
}

TEST(FileNameTest, OtherNamesAreNotChunks) {
  EXPECT_FALSE(IsChunkPrefixDirName("0"));
  EXPECT_FALSE(IsChunkPrefixDirName("012"));
  EXPECT_FALSE(IsChunkPrefixDirName(""));
  EXPECT_FALSE(IsChunkPrefixDirName(".."));
  EXPECT_FALSE(IsChunkPrefixDirName("0g"));
  const std::string hex = "0123456789abcdef0123456789abcdef";
  EXPECT_FALSE(ParseChunkFileName(hex).has_value());  // no suffix
  EXPECT_FALSE(ParseChunkFileName(hex + ".chunk.tmp").has_value());
  EXPECT_FALSE(ParseChunkFileName(hex.substr(1) + ".chunk").has_value());
  EXPECT_FALSE(ParseChunkFileName(hex + "0.chunk").has_value());
  EXPECT_FALSE(ParseChunkFileName("g" + hex.substr(1) + ".chunk").has_value());
  EXPECT_FALSE(ParseChunkFileName(".tmp-1-2-3-" + hex).has_value());
}

TEST(FileNameTest, RevisionNamesRoundTrip) {
  for (auto type : {RevisionFileType::kMetadata, RevisionFileType::kIndex}) {
    const std::string name = RevisionFileBaseName("Ab3xYz", type);
    auto parsed = ParseRevisionFileName(name);
    ASSERT_TRUE(parsed.has_value()) << name;
    EXPECT_EQ(parsed->id, "Ab3xYz");
    EXPECT_EQ(parsed->type, type);
  }
  EXPECT_EQ(RevisionFileBaseName("x", RevisionFileType::kMetadata), "x.rev");
  EXPECT_EQ(RevisionFileBaseName("x", RevisionFileType::kIndex), "x.index");
  // The base name of the full path is the same name.
  const std::string path = IndexFileName("/r", "x");
  EXPECT_EQ(path.substr(path.rfind('/') + 1), "x.index");
}

TEST(FileNameTest, OtherNamesAreNotRevisions) {
  for (const char* name : {".rev", ".index", ".x.rev", ".tmp-1-2-3-publish",
                           "x.rev.tmp", "x", "", "x.idx"}) {
    EXPECT_FALSE(ParseRevisionFileName(name).has_value()) << name;
  }
}

TEST(FileNameTest, PinNamesRoundTripAndNothingElseIsAPin) {
  const std::string token = "0123456789abcdef0123456789abcdef";
  for (auto type : {PinFileType::kPin, PinFileType::kIndex}) {
    auto parsed = ParsePinFileName(PinFileBaseName(token, type));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->token, token);
    EXPECT_EQ(parsed->type, type);
  }
  EXPECT_EQ(PinFileBaseName(token, PinFileType::kPin), token + ".pin");
  EXPECT_EQ(PinsDirName("/r"), "/r/pins");
  for (const std::string& name : std::vector<std::string>{
           token, token + ".pin.tmp", "x.pin", ".pin", token.substr(1) + ".pin",
           "0123456789ABCDEF0123456789abcdef.pin", token + "0.index",
           "../" + token.substr(3) + ".pin"}) {
    EXPECT_FALSE(ParsePinFileName(name).has_value()) << name;
  }
}

}  // namespace
}  // namespace backy::store
