#include "file_export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>

#include "store/file_io.h"

namespace backy::nbd {

namespace {

bool AllZero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

}  // namespace

Result<std::shared_ptr<FileExport>> FileExport::Open(const std::string& path,
                                                     std::string description,
                                                     bool nowait) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = Status::FromErrno(errno, "stat", path);
    ::close(fd);
    return s;
  }
  std::shared_ptr<FileExport> exp(new FileExport(
      fd, static_cast<uint64_t>(st.st_size), path, std::move(description)));
  exp->nowait_ = nowait;
  const uint64_t blocks = (exp->size_ + kBlock - 1) / kBlock;
  exp->zero_.resize(blocks);
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0; off < exp->size_; off += buf.size()) {
    const size_t n = std::min<uint64_t>(buf.size(), exp->size_ - off);
    Status s = exp->Read(off, {buf.data(), n});
    if (!s.ok()) return s;
    for (size_t i = 0; i < n; i += kBlock) {
      exp->zero_[(off + i) / kBlock] =
          AllZero(buf.data() + i, std::min<size_t>(kBlock, n - i));
    }
  }
  return exp;
}

FileExport::~FileExport() { ::close(fd_); }

Status FileExport::Read(uint64_t offset, std::span<uint8_t> buf) {
  assert(offset + buf.size() <= size_);
  return PReadAll(fd_, buf, offset, path_);
}

Status FileExport::ReadNoWait(uint64_t offset, std::span<uint8_t> buf) {
  assert(offset + buf.size() <= size_);
  if (!nowait_) return Status::WouldBlock("reads go to the workers", path_);
  return PReadNoWait(fd_, buf, offset, path_);
}

Status FileExport::BlockStatus(uint64_t offset, uint64_t length,
                               std::vector<ExportExtent>* extents) {
  assert(length > 0 && offset + length <= size_);
  const uint64_t end = offset + length;
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t block = pos / kBlock;
    const bool zero = zero_[block] != 0;
    const uint64_t next = std::min(end, (block + 1) * kBlock);
    if (!extents->empty() && extents->back().end() == pos &&
        extents->back().zero == zero) {
      extents->back().length += next - pos;
    } else {
      extents->push_back({pos, next - pos, zero, zero});
    }
    pos = next;
  }
  return Status::OK();
}

}  // namespace backy::nbd
