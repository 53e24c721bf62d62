// The Source contract (source_conformance.h) for FileSource and the
// FakeSource that backup tests use, plus what only FileSource does: holes,
// no diffs, and an image that changes under a backup.
#include "source_conformance.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sources/file_source.h"
#include "support/fake_source.h"
#include "support/test_util.h"

namespace backy::sources {
namespace {

using conformance::FirstImage;
using conformance::kImageSize;
using conformance::kMiB;

// Writes `bytes` to `path` sparsely: blocks of zeros become holes.
void WriteSparse(const std::string& path, const std::vector<uint8_t>& bytes) {
  constexpr size_t kBlock = 64 * 1024;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  for (size_t off = 0; off < bytes.size(); off += kBlock) {
    const size_t len = std::min(kBlock, bytes.size() - off);
    if (IsAllZero({bytes.data() + off, len})) continue;
    ASSERT_EQ(::pwrite(fd, bytes.data() + off, len, static_cast<off_t>(off)),
              static_cast<ssize_t>(len));
  }
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(bytes.size())), 0);
  ASSERT_EQ(::close(fd), 0);
}

std::string MakeTempDir() {
  char tmpl[] = "/tmp/backy-source-XXXXXX";
  const char* dir = ::mkdtemp(tmpl);
  EXPECT_NE(dir, nullptr) << std::strerror(errno);
  return dir != nullptr ? dir : "";
}

}  // namespace

// The harnesses live in the suite's namespace, as gtest requires of the
// instantiation.
namespace conformance {

class FileHarness {
 public:
  static constexpr bool kDiffs = false;

  void SetUp() { dir_ = MakeTempDir(); }
  void TearDown() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void WriteImage(const std::vector<uint8_t>& bytes) {
    WriteSparse(path(), bytes);
  }
  Source* NewSource() {
    sources_.push_back(std::make_unique<FileSource>(path()));
    return sources_.back().get();
  }
  Source* NewMissingSource() {
    sources_.push_back(std::make_unique<FileSource>(dir_ + "/missing.raw"));
    return sources_.back().get();
  }
  std::string path() const { return dir_ + "/image.raw"; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<FileSource>> sources_;
};

// One FakeSource for every backup, as backup_run_test uses it: its
// snapshots are what it can diff from.
class FakeHarness {
 public:
  static constexpr bool kDiffs = true;

  void SetUp() { missing_.missing = true; }
  void TearDown() {}
  void WriteImage(const std::vector<uint8_t>& bytes) { fake_.image = bytes; }
  Source* NewSource() { return &fake_; }
  Source* NewMissingSource() { return &missing_; }

 private:
  FakeSource fake_;
  FakeSource missing_;
};

using LocalHarnesses = ::testing::Types<FileHarness, FakeHarness>;
INSTANTIATE_TYPED_TEST_SUITE_P(SourceConformance, SourceConformanceTest,
                               LocalHarnesses);

}  // namespace conformance

namespace {

using conformance::FileHarness;

// ---- FileSource only --------------------------------------------------------

class FileSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    h_.SetUp();
    h_.WriteImage(FirstImage());
  }
  void TearDown() override { h_.TearDown(); }

  // Begins a FileSource on the image.
  FileSource* Begun() {
    auto* src = static_cast<FileSource*>(h_.NewSource());
    EXPECT_OK(src->Begin("r1"));
    return src;
  }
  // Whether the file system of the image reports holes.
  bool HasHoles() {
    const int fd = ::open(h_.path().c_str(), O_RDONLY);
    const off_t hole = ::lseek(fd, 0, SEEK_HOLE);
    ::close(fd);
    return hole >= 0 && static_cast<uint64_t>(hole) < kImageSize;
  }
  static void ExpectNames(const Status& s, const std::string& path,
                          const std::string& words) {
    EXPECT_NE(s.ToString().find(path), std::string::npos) << s.ToString();
    EXPECT_NE(s.ToString().find(words), std::string::npos) << s.ToString();
  }

  FileHarness h_;
};

TEST_F(FileSourceTest, HolesAreNotListed) {
  if (!HasHoles()) GTEST_SKIP() << "file system without holes";
  FileSource* src = Begun();
  ExtentList extents;
  ASSERT_OK(src->Extents("", &extents));
  // FirstImage() is zero in [1 MiB, 5 MiB): a hole, never read.
  for (const Extent& e : extents) {
    EXPECT_EQ(e.kind, Extent::Kind::kData);
    EXPECT_FALSE(e.offset < 4 * kMiB && e.end() > 2 * kMiB)
        << "hole listed: " << e.offset << "+" << e.length;
  }
  EXPECT_FALSE(extents.empty());
}

TEST_F(FileSourceTest, AnImageOfOnlyAHoleHasNoExtents) {
  h_.WriteImage(std::vector<uint8_t>(kImageSize, 0));
  if (!HasHoles()) GTEST_SKIP() << "file system without holes";
  FileSource* src = Begun();
  EXPECT_EQ(src->Size(), kImageSize);
  ExtentList extents = {{0, 1, Extent::Kind::kData}};  // must be cleared
  ASSERT_OK(src->Extents("", &extents));
  EXPECT_TRUE(extents.empty());
}

TEST_F(FileSourceTest, CannotDiff) {
  FileSource* src = Begun();
  EXPECT_FALSE(src->CanDiffFrom("r1"));
  ExtentList extents;
  const Status s = src->Extents("r1", &extents);
  EXPECT_TRUE(s.IsNotSupported()) << s.ToString();
  ExpectNames(s, h_.path(), "cannot diff");
  EXPECT_EQ(src->verify_mode(), VerifyMode::kFull);
}

TEST_F(FileSourceTest, ShrinkingDuringTheBackupFails) {
  FileSource* src = Begun();
  ASSERT_EQ(::truncate(h_.path().c_str(), 4 * kMiB), 0);
  std::vector<uint8_t> buf(4096);
  const Status read = src->Read(6 * kMiB, buf);
  EXPECT_TRUE(read.IsIOError()) << read.ToString();
  ExpectNames(read, h_.path(), "shrank");
  const Status check = src->CheckUnchanged();
  EXPECT_TRUE(check.IsIOError()) << check.ToString();
  ExpectNames(check, h_.path(), "changed size");
}

TEST_F(FileSourceTest, GrowingDuringTheBackupFails) {
  FileSource* src = Begun();
  ASSERT_EQ(::truncate(h_.path().c_str(), kImageSize + 4096), 0);
  const Status s = src->CheckUnchanged();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  ExpectNames(s, h_.path(), "changed size");
}

TEST_F(FileSourceTest, ReplacingDuringTheBackupFails) {
  FileSource* src = Begun();
  const std::string other = h_.path() + ".new";
  WriteSparse(other, FirstImage());
  ASSERT_EQ(::rename(other.c_str(), h_.path().c_str()), 0);
  const Status s = src->CheckUnchanged();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  ExpectNames(s, h_.path(), "replaced");
}

TEST_F(FileSourceTest, RemovingDuringTheBackupFails) {
  FileSource* src = Begun();
  ASSERT_EQ(::unlink(h_.path().c_str()), 0);
  const Status s = src->CheckUnchanged();
  EXPECT_FALSE(s.ok());
  ExpectNames(s, h_.path(), "vanished");
}

TEST_F(FileSourceTest, ADirectoryIsNoImage) {
  FileSource src(std::filesystem::path(h_.path()).parent_path());
  const Status s = src.Begin("r1");
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find(src.Name()), std::string::npos) << s.ToString();
}

TEST_F(FileSourceTest, ProbeReportsTheSizeOrWhyNot) {
  auto size = ProbeFileImage(h_.path());
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, kImageSize);

  const std::string dir = std::filesystem::path(h_.path()).parent_path();
  auto missing = ProbeFileImage(dir + "/missing.raw");
  EXPECT_TRUE(missing.status().IsNotFound()) << missing.status().ToString();

  const std::string empty = dir + "/empty.raw";
  WriteSparse(empty, {});
  auto empty_size = ProbeFileImage(empty);
  EXPECT_TRUE(empty_size.status().IsInvalidArgument());
  ExpectNames(empty_size.status(), empty, "empty");

  auto directory = ProbeFileImage(dir);
  EXPECT_TRUE(directory.status().IsInvalidArgument());
  ExpectNames(directory.status(), dir, "directory");
}

}  // namespace
}  // namespace backy::sources
