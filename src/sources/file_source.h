// FileSource: a raw image file (or block device) as a backup source.
//
// Reads the image as it is (no snapshot), sparse-aware: Extents() reports
// only the ranges SEEK_DATA/SEEK_HOLE find, so holes are never read. There
// is no change tracking, so every backup reads all data ranges and the
// store skips chunks it already has. Read() is thread-safe (pread). A file
// that changes size or is replaced during a backup fails the backup
// (CheckUnchanged); writes in place are read as they come, crash-consistent
// at best, as without backy.
#pragma once

#include <atomic>
#include <string>

#include "sources/source.h"

namespace backy::sources {

// Checks that `path` can be a file source (for `backy init`): a regular
// file or a block device, readable, not empty. Returns its size.
// NotFound when missing; InvalidArgument naming the path for anything
// else it refuses; IOError when it cannot be opened (permissions).
Result<uint64_t> ProbeFileImage(const std::string& path);

class FileSource final : public Source {
 public:
  explicit FileSource(std::string path);
  ~FileSource() override;

  std::string Name() const override { return path_; }
  Status Begin(const std::string& revision_id) override;
  uint64_t Size() const override { return size_; }
  bool CanDiffFrom(const std::string&) override { return false; }
  Status Extents(const std::string& base_revision_id, ExtentList* out) override;
  Status Read(uint64_t offset, std::span<uint8_t> buf) override;
  Status Commit(const std::string&) override { return Status::OK(); }
  void Abort() override {}
  // Fails when the file's size changed or PATH names another file than
  // the one Begin() opened.
  Status CheckUnchanged() override;
  VerifyMode verify_mode() const override { return VerifyMode::kFull; }
  uint64_t bytes_read() const override { return bytes_read_.load(); }

 private:
  const std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool is_block_device_ = false;
  // What Begin() opened: st_dev/st_ino (st_rdev for a block device).
  uint64_t dev_ = 0, ino_ = 0, rdev_ = 0;
  std::atomic<uint64_t> bytes_read_{0};
};

}  // namespace backy::sources
