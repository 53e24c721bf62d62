// FileExport: a read-only Export serving a raw image file (tests only).
//
// At open it scans the file once and remembers which kBlock blocks are all
// zeros; BlockStatus() reports those as holes, so tests can check that the
// server turns zero ranges into OFFSET_HOLE chunks and base:allocation
// holes. ReadNoWait() reads only from the page cache (so the server's
// I/O-thread path is exercised too), unless the export is opened with
// `nowait` false, which keeps every read on the workers. Thread-safe: reads
// use pread() on one descriptor.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nbd/export.h"

namespace backy::nbd {

class FileExport : public Export {
 public:
  static constexpr uint64_t kBlock = 4096;

  static Result<std::shared_ptr<FileExport>> Open(const std::string& path,
                                                  std::string description,
                                                  bool nowait = true);
  ~FileExport() override;

  uint64_t Size() const override { return size_; }
  std::string Description() const override { return description_; }
  Status Read(uint64_t offset, std::span<uint8_t> buf) override;
  bool CanReadNoWait() const override { return nowait_; }
  Status ReadNoWait(uint64_t offset, std::span<uint8_t> buf) override;
  Status BlockStatus(uint64_t offset, uint64_t length,
                     std::vector<ExportExtent>* extents) override;

 private:
  FileExport(int fd, uint64_t size, std::string path, std::string description)
      : fd_(fd),
        size_(size),
        path_(std::move(path)),
        description_(std::move(description)) {}
  const int fd_;
  const uint64_t size_;
  const std::string path_;
  const std::string description_;
  bool nowait_ = true;
  std::vector<uint8_t> zero_;  // per block: 1 if all zeros
};

}  // namespace backy::nbd
