// CowExport: a writable view of a read-only Export (`nbd-server --cow`).
//
// Writes go to a private overlay that is thrown away with the object, so the
// wrapped export is never modified: the server creates one CowExport per
// connection and drops it on disconnect. Overlay data lives in an unlinked
// temporary file (so it costs disk, not RAM); a small in-memory table records
// per kBlock block whether it is unchanged, rewritten, or zeroed.
// Thread-safety: safe for concurrent use; writes are serialised, reads run in
// parallel with each other.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "nbd/export.h"

namespace backy::nbd {

class CowExport : public Export {
 public:
  // Overlay granularity: partial writes read-modify-write one block.
  static constexpr uint64_t kBlock = 4096;

  // Wraps `base`, which must stay readable for the lifetime of this object.
  // The overlay file is created in `temp_dir` on the first write (default:
  // $TMPDIR, else /var/tmp).
  explicit CowExport(std::shared_ptr<Export> base, std::string temp_dir = {});
  ~CowExport() override;

  uint64_t Size() const override { return size_; }
  std::string Description() const override { return base_->Description(); }
  bool IsReadOnly() const override { return false; }
  // The overlay is private to one connection.
  bool CanMultiConn() const override { return false; }
  Status Read(uint64_t offset, std::span<uint8_t> buf) override;
  Status BlockStatus(uint64_t offset, uint64_t length,
                     std::vector<ExportExtent>* extents) override;
  Status Cache(uint64_t offset, uint64_t length) override;
  Status Write(uint64_t offset, std::span<const uint8_t> data) override;
  Status WriteZeroes(uint64_t offset, uint64_t length) override;
  Status Trim(uint64_t offset, uint64_t length) override;
  Status Flush() override { return Status::OK(); }

 private:
  enum State : uint8_t { kBase = 0, kOverlay = 1, kZero = 2 };
  static constexpr uint64_t kPageBlocks = 65536;  // states per table page

  State GetState(uint64_t block) const;
  void SetState(uint64_t block, State s);
  // Length in bytes of `block` (the last block may be short).
  uint64_t BlockLength(uint64_t block) const;
  // Number of blocks from `block` on (at most `max_blocks`) that share its
  // state.
  uint64_t RunLength(uint64_t block, uint64_t max_blocks) const;
  Status EnsureFile();
  Status PRead(uint64_t offset, std::span<uint8_t> buf) const;
  Status PWrite(uint64_t offset, std::span<const uint8_t> data);
  // Copies the current content of `block` into the overlay file.
  // REQUIRES: mu_ held exclusively.
  Status MaterialiseBlock(uint64_t block);
  // Marks whole blocks in [offset, offset+length) zero; partial blocks are
  // zero-filled through the overlay if `zero_partial`.
  Status ZeroRange(uint64_t offset, uint64_t length, bool zero_partial);

  const std::shared_ptr<Export> base_;
  const uint64_t size_;
  const std::string temp_dir_;
  mutable std::shared_mutex mu_;
  int fd_ = -1;                                    // guarded by mu_
  std::vector<std::unique_ptr<uint8_t[]>> pages_;  // guarded by mu_
};

}  // namespace backy::nbd
