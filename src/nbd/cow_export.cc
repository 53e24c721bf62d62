#include "nbd/cow_export.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "store/file_io.h"

namespace backy::nbd {

CowExport::CowExport(std::shared_ptr<Export> base, std::string temp_dir)
    : base_(std::move(base)),
      size_(base_->Size()),
      temp_dir_(temp_dir.empty() ? TempDirectory() : std::move(temp_dir)) {
  const uint64_t blocks = (size_ + kBlock - 1) / kBlock;
  pages_.resize((blocks + kPageBlocks - 1) / kPageBlocks);
}

CowExport::~CowExport() {
  if (fd_ >= 0) ::close(fd_);
}

CowExport::State CowExport::GetState(uint64_t block) const {
  const auto& page = pages_[block / kPageBlocks];
  return page ? static_cast<State>(page[block % kPageBlocks]) : kBase;
}

void CowExport::SetState(uint64_t block, State s) {
  auto& page = pages_[block / kPageBlocks];
  if (!page) {
    if (s == kBase) return;
    page = std::make_unique<uint8_t[]>(kPageBlocks);  // zeroed: kBase
  }
  page[block % kPageBlocks] = s;
}

uint64_t CowExport::BlockLength(uint64_t block) const {
  return std::min(kBlock, size_ - block * kBlock);
}

uint64_t CowExport::RunLength(uint64_t block, uint64_t max_blocks) const {
  const State s = GetState(block);
  uint64_t n = 1;
  while (n < max_blocks) {
    const uint64_t b = block + n;
    // Skip untouched pages quickly when looking for the end of a base run.
    if (s == kBase && b % kPageBlocks == 0 && !pages_[b / kPageBlocks]) {
      n += std::min<uint64_t>(kPageBlocks, max_blocks - n);
      continue;
    }
    if (GetState(b) != s) break;
    ++n;
  }
  return std::min(n, max_blocks);
}

Status CowExport::EnsureFile() {
  if (fd_ >= 0) return Status::OK();
  auto fd = OpenUnnamedFile(temp_dir_, "creating copy-on-write overlay");
  if (!fd.ok()) return fd.status();
  fd_ = *fd;
  return Status::OK();
}

Status CowExport::PRead(uint64_t offset, std::span<uint8_t> buf) const {
  size_t done = 0;
  while (done < buf.size()) {
    const ssize_t r = ::pread(fd_, buf.data() + done, buf.size() - done,
                              static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "reading copy-on-write overlay",
                               temp_dir_);
    }
    if (r == 0) {  // sparse tail never written: reads as zeros
      std::memset(buf.data() + done, 0, buf.size() - done);
      break;
    }
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

Status CowExport::PWrite(uint64_t offset, std::span<const uint8_t> data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t r = ::pwrite(fd_, data.data() + done, data.size() - done,
                               static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "writing copy-on-write overlay",
                               temp_dir_);
    }
    done += static_cast<size_t>(r);
  }
  return Status::OK();
}

Status CowExport::Read(uint64_t offset, std::span<uint8_t> buf) {
  assert(!buf.empty() && offset + buf.size() <= size_);
  std::shared_lock lock(mu_);
  const uint64_t end = offset + buf.size();
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t block = pos / kBlock;
    const uint64_t last_block = (end - 1) / kBlock;
    const uint64_t run = RunLength(block, last_block - block + 1);
    const uint64_t run_end = std::min(end, (block + run) * kBlock);
    std::span<uint8_t> part = buf.subspan(pos - offset, run_end - pos);
    Status s;
    switch (GetState(block)) {
      case kBase:
        s = base_->Read(pos, part);
        break;
      case kOverlay:
        s = PRead(pos, part);
        break;
      case kZero:
        std::memset(part.data(), 0, part.size());
        break;
    }
    if (!s.ok()) return s;
    pos = run_end;
  }
  return Status::OK();
}

Status CowExport::BlockStatus(uint64_t offset, uint64_t length,
                              std::vector<ExportExtent>* extents) {
  assert(length > 0 && offset + length <= size_);
  std::shared_lock lock(mu_);
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  auto append = [extents](ExportExtent e) {
    if (!extents->empty() && extents->back().end() == e.offset &&
        extents->back().hole == e.hole && extents->back().zero == e.zero) {
      extents->back().length += e.length;
    } else {
      extents->push_back(e);
    }
  };
  while (pos < end) {
    const uint64_t block = pos / kBlock;
    const uint64_t last_block = (end - 1) / kBlock;
    const uint64_t run = RunLength(block, last_block - block + 1);
    const uint64_t run_end = std::min(end, (block + run) * kBlock);
    switch (GetState(block)) {
      case kBase: {
        std::vector<ExportExtent> base_extents;
        Status s = base_->BlockStatus(pos, run_end - pos, &base_extents);
        if (!s.ok()) return s;
        uint64_t covered = pos;
        for (const ExportExtent& e : base_extents) {
          if (e.offset != covered || e.length == 0) break;
          ExportExtent clipped = e;
          clipped.length = std::min(e.end(), run_end) - e.offset;
          append(clipped);
          covered = clipped.end();
          if (covered >= run_end) break;
        }
        if (covered == pos) return Status::IOError("bad block status");
        if (covered < run_end) return Status::OK();  // a prefix is enough
        break;
      }
      case kOverlay:
        append({pos, run_end - pos, false, false});
        break;
      case kZero:
        append({pos, run_end - pos, true, true});
        break;
    }
    pos = run_end;
  }
  return Status::OK();
}

Status CowExport::Cache(uint64_t offset, uint64_t length) {
  return base_->Cache(offset, length);
}

Status CowExport::MaterialiseBlock(uint64_t block) {
  const State s = GetState(block);
  if (s == kOverlay) return Status::OK();
  uint8_t tmp[kBlock];
  std::span<uint8_t> buf(tmp, BlockLength(block));
  if (s == kBase) {
    Status st = base_->Read(block * kBlock, buf);
    if (!st.ok()) return st;
  } else {
    std::memset(buf.data(), 0, buf.size());
  }
  return PWrite(block * kBlock, buf);
}

Status CowExport::Write(uint64_t offset, std::span<const uint8_t> data) {
  assert(!data.empty() && offset + data.size() <= size_);
  std::unique_lock lock(mu_);
  Status s = EnsureFile();
  if (!s.ok()) return s;
  const uint64_t end = offset + data.size();
  const uint64_t first = offset / kBlock;
  const uint64_t last = (end - 1) / kBlock;
  // Only the first and last block can be partially covered; their old
  // content must reach the overlay before the new bytes land on top.
  if (offset % kBlock != 0 || end - first * kBlock < BlockLength(first)) {
    s = MaterialiseBlock(first);
    if (!s.ok()) return s;
  }
  if (last != first && end - last * kBlock < BlockLength(last)) {
    s = MaterialiseBlock(last);
    if (!s.ok()) return s;
  }
  s = PWrite(offset, data);
  if (!s.ok()) return s;
  for (uint64_t b = first; b <= last; ++b) SetState(b, kOverlay);
  return Status::OK();
}

Status CowExport::ZeroRange(uint64_t offset, uint64_t length,
                            bool zero_partial) {
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  static const uint8_t kZeros[kBlock] = {};
  while (pos < end) {
    const uint64_t block = pos / kBlock;
    const uint64_t block_start = block * kBlock;
    const uint64_t block_end = block_start + BlockLength(block);
    const uint64_t piece_end = std::min(end, block_end);
    if (pos == block_start && piece_end == block_end) {
      SetState(block, kZero);
    } else if (zero_partial && GetState(block) != kZero) {
      Status s = EnsureFile();
      if (s.ok()) s = MaterialiseBlock(block);
      if (s.ok()) s = PWrite(pos, {kZeros, piece_end - pos});
      if (!s.ok()) return s;
      SetState(block, kOverlay);
    }
    pos = piece_end;
  }
  if (fd_ >= 0) {
    // Give the overlay's disk space back; failure only costs space.
    const uint64_t a = (offset + kBlock - 1) / kBlock * kBlock;
    const uint64_t b = end / kBlock * kBlock;
    if (b > a) {
      (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        static_cast<off_t>(a), static_cast<off_t>(b - a));
    }
  }
  return Status::OK();
}

Status CowExport::WriteZeroes(uint64_t offset, uint64_t length) {
  assert(length > 0 && offset + length <= size_);
  std::unique_lock lock(mu_);
  return ZeroRange(offset, length, /*zero_partial=*/true);
}

Status CowExport::Trim(uint64_t offset, uint64_t length) {
  assert(length > 0 && offset + length <= size_);
  std::unique_lock lock(mu_);
  // Trimmed data is unspecified until rewritten, so whole blocks become
  // zeros and partial blocks keep their content.
  return ZeroRange(offset, length, /*zero_partial=*/false);
}

}  // namespace backy::nbd
