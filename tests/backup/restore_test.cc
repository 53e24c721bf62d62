// RunRestore on a sparse image: runs of zero slots cost one step (not one
// per slot) whatever the sink, and every byte still comes out right.
#include "backup/restore.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>

#include "backup/backup_run.h"
#include "sources/file_source.h"
#include "store/directory_repository.h"
#include "support/temp_repository.h"
#include "support/test_util.h"

namespace backy::backup {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kChunk = store::kDefaultChunkSize;

// Records what it is given and checks it against the image file: data at
// its offsets, zeros only where the image is zero, and (for a stream) that
// writes come in order and cover the image exactly.
class CheckingSink final : public RestoreSink {
 public:
  CheckingSink(std::string image, bool random_access, bool skips_zeros)
      : fd_(::open(image.c_str(), O_RDONLY)),
        random_access_(random_access),
        skips_zeros_(skips_zeros) {}
  ~CheckingSink() override { ::close(fd_); }
  Status Open(uint64_t size) override {
    size_ = size;
    return Status::OK();
  }
  bool RandomAccess() const override { return random_access_; }
  bool SkipsZeros() const override { return skips_zeros_; }
  Status Write(uint64_t offset, std::span<const uint8_t> data,
               bool zero) override {
    bool same;
    if (zero) {
      // The image has no data there, and the zeros given are zeros (their
      // ends: checking every byte of 16 GiB would be the whole test).
      const off_t next = ::lseek(fd_, static_cast<off_t>(offset), SEEK_DATA);
      const size_t probe = std::min<size_t>(data.size(), 4096);
      same =
          (next < 0 || static_cast<uint64_t>(next) >= offset + data.size()) &&
          std::all_of(data.begin(), data.begin() + probe,
                      [](uint8_t b) { return b == 0; }) &&
          std::all_of(data.end() - probe, data.end(),
                      [](uint8_t b) { return b == 0; });
    } else {
      std::vector<uint8_t> want(data.size());
      same = ::pread(fd_, want.data(), want.size(), offset) ==
                 static_cast<ssize_t>(want.size()) &&
             std::equal(want.begin(), want.end(), data.begin());
    }
    std::lock_guard<std::mutex> l(mu_);
    if (!random_access_) {
      EXPECT_EQ(offset, end_) << "stream written out of order";
      end_ = offset + data.size();
    }
    bytes_ += data.size();
    EXPECT_TRUE(same) << (zero ? "zeros" : "data") << " at " << offset
                      << " differ";
    ++(zero ? zero_writes_ : data_writes_);
    return Status::OK();
  }
  Status Finish() override {
    finished_ = true;
    return Status::OK();
  }
  void Abort() override {}

  uint64_t size_ = 0, end_ = 0, bytes_ = 0;
  size_t zero_writes_ = 0, data_writes_ = 0;
  bool finished_ = false;

 private:
  int fd_;
  bool random_access_, skips_zeros_;
  std::mutex mu_;
};

class RestoreTest : public ::testing::Test {
 protected:
  // A 16 GiB + 12345 bytes sparse image (4097 slots): data in slots 0,
  // 3, 1000 and 3000, and in the short last slot.
  RestoreTest() : repo_(temp_.Take()) {
    image_ = temp_.dir() + "/../vm.img";
    FILE* f = std::fopen(image_.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    std::fclose(f);
    std::filesystem::resize_file(image_, (uint64_t{16} << 30) + 12345);
    std::mt19937_64 rng(14);
    std::vector<uint8_t> piece(kMiB);
    int fd = ::open(image_.c_str(), O_WRONLY);
    for (uint64_t off : {uint64_t{0}, 3 * kChunk + 5, 1000 * kChunk + kMiB,
                         3000 * kChunk, uint64_t{16} << 30}) {
      for (auto& b : piece) b = static_cast<uint8_t>(rng());
      const size_t n = std::min<uint64_t>(
          piece.size(), std::filesystem::file_size(image_) - off);
      EXPECT_EQ(::pwrite(fd, piece.data(), n, off), static_cast<ssize_t>(n));
    }
    ::close(fd);
    sources::FileSource src(image_);
    BackupOptions o;
    o.tags = {"daily"};
    auto r = RunBackup(*repo_, src, o);
    EXPECT_OK(r.status());
    if (r.ok()) revision_ = *r;
  }

  store::TempRepository temp_;
  std::unique_ptr<store::DirectoryRepository> repo_;
  std::string image_;
  store::Revision revision_;
};

TEST_F(RestoreTest, AStreamGetsEveryByteInOrderZerosInFewWrites) {
  CheckingSink sink(image_, /*random_access=*/false, /*skips_zeros=*/false);
  ASSERT_OK(RunRestore(*repo_, revision_, sink, {}));
  EXPECT_TRUE(sink.finished_);
  EXPECT_EQ(sink.end_, revision_.size);
  EXPECT_EQ(sink.bytes_, revision_.size);
  EXPECT_EQ(sink.data_writes_, 5u);
  // One write per zero slot would be 4092; large pieces are ~1/4 of that.
  EXPECT_LE(sink.zero_writes_, revision_.size / (16 * kMiB) + 5);
  EXPECT_GE(sink.zero_writes_, 4u);  // the runs between the data slots
}

TEST_F(RestoreTest, ABlockDeviceGetsZerosWrittenToo) {
  CheckingSink sink(image_, /*random_access=*/true, /*skips_zeros=*/false);
  ASSERT_OK(RunRestore(*repo_, revision_, sink, {}));
  EXPECT_EQ(sink.bytes_, revision_.size);
  EXPECT_EQ(sink.data_writes_, 5u);
  EXPECT_LE(sink.zero_writes_, revision_.size / (16 * kMiB) + 5);
}

TEST_F(RestoreTest, ASparseFileGetsOnlyTheData) {
  CheckingSink sink(image_, /*random_access=*/true, /*skips_zeros=*/true);
  ASSERT_OK(RunRestore(*repo_, revision_, sink, {}));
  EXPECT_TRUE(sink.finished_);
  EXPECT_EQ(sink.data_writes_, 5u);
  EXPECT_EQ(sink.zero_writes_, 0u);
  EXPECT_EQ(sink.bytes_, 4 * kChunk + 12345);
}

TEST_F(RestoreTest, ACancelledRestoreIsInterrupted) {
  std::atomic<bool> cancel{true};
  RestoreOptions o;
  o.cancel = &cancel;
  CheckingSink sink(image_, /*random_access=*/false, /*skips_zeros=*/false);
  Status s = RunRestore(*repo_, revision_, sink, o);
  EXPECT_TRUE(s.IsInterrupted()) << s.ToString();
  EXPECT_FALSE(sink.finished_);
}

}  // namespace
}  // namespace backy::backup
