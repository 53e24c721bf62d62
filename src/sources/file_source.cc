#include "sources/file_source.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace backy::sources {

Result<uint64_t> ProbeFileImage(const std::string& path) {
  // O_NONBLOCK: a FIFO must not hang init.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return Status::NotFound("source image does not exist", path);
    }
    return Status::FromErrno(errno, "open source image", path);
  }
  struct stat st;
  uint64_t size = 0;
  Status s;
  if (::fstat(fd, &st) != 0) {
    s = Status::FromErrno(errno, "stat", path);
  } else if (S_ISDIR(st.st_mode)) {
    s = Status::InvalidArgument("source image is a directory", path);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0) {
      s = Status::FromErrno(errno, "get size of block device", path);
    }
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else {
    s = Status::InvalidArgument(
        "source image must be a regular file or a block device", path);
  }
  ::close(fd);
  if (!s.ok()) return s;
  if (size == 0) return Status::InvalidArgument("source image is empty", path);
  return size;
}

FileSource::FileSource(std::string path) : path_(std::move(path)) {}

FileSource::~FileSource() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileSource::Begin(const std::string&) {
  fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    if (errno == ENOENT)
      return Status::NotFound("source image does not exist", path_);
    return Status::FromErrno(errno, "open source image", path_);
  }
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, "stat", path_);
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  rdev_ = st.st_rdev;
  if (S_ISBLK(st.st_mode)) {
    is_block_device_ = true;
    if (::ioctl(fd_, BLKGETSIZE64, &size_) != 0) {
      return Status::FromErrno(errno, "get size of block device", path_);
    }
  } else if (S_ISREG(st.st_mode)) {
    size_ = static_cast<uint64_t>(st.st_size);
  } else {
    return Status::InvalidArgument(
        "source is neither a regular file nor a block device", path_);
  }
  ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  return Status::OK();
}

Status FileSource::Extents(const std::string& base_revision_id,
                           ExtentList* out) {
  out->clear();
  if (!base_revision_id.empty()) {
    return Status::NotSupported("file sources cannot diff", path_);
  }
  if (size_ == 0) return Status::OK();
  if (is_block_device_) {
    out->push_back({0, size_, Extent::Kind::kData});
    return Status::OK();
  }
  off_t pos = 0;
  const off_t end = static_cast<off_t>(size_);
  while (pos < end) {
    off_t data = ::lseek(fd_, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole remains
      if (errno == EINVAL) {      // file system without SEEK_DATA
        out->clear();
        out->push_back({0, size_, Extent::Kind::kData});
        return Status::OK();
      }
      return Status::FromErrno(errno, "seek data", path_);
    }
    if (data >= end) break;
    off_t hole = ::lseek(fd_, data, SEEK_HOLE);
    if (hole < 0) return Status::FromErrno(errno, "seek hole", path_);
    if (hole > end) hole = end;
    out->push_back({static_cast<uint64_t>(data),
                    static_cast<uint64_t>(hole - data), Extent::Kind::kData});
    pos = hole;
  }
  return Status::OK();
}

Status FileSource::Read(uint64_t offset, std::span<uint8_t> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd_, buf.data() + done, buf.size() - done,
                        static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read source image", path_);
    }
    if (n == 0) {
      if (offset + done < size_) {
        return Status::IOError(
            "source image shrank during the backup (it had " +
                std::to_string(size_) + " bytes, reading at " +
                std::to_string(offset + done) + " found its end)",
            path_);
      }
      std::memset(buf.data() + done, 0, buf.size() - done);  // beyond Size()
      break;
    }
    done += static_cast<size_t>(n);
  }
  bytes_read_ += done;
  return Status::OK();
}

Status FileSource::CheckUnchanged() {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Status::FromErrno(errno, "stat", path_);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (is_block_device_ && ::ioctl(fd_, BLKGETSIZE64, &size) != 0) {
    return Status::FromErrno(errno, "get size of block device", path_);
  }
  if (size != size_) {
    return Status::IOError(
        "source image changed size during the backup "
        "(from " +
            std::to_string(size_) + " to " + std::to_string(size) + " bytes)",
        path_);
  }
  struct stat now;
  if (::stat(path_.c_str(), &now) != 0) {
    return Status::FromErrno(
        errno, "source image vanished during the backup: stat", path_);
  }
  const bool same = is_block_device_
                        ? S_ISBLK(now.st_mode) && now.st_rdev == rdev_
                        : now.st_dev == dev_ && now.st_ino == ino_;
  if (!same) {
    return Status::IOError(
        "source image was replaced by another file during the backup", path_);
  }
  return Status::OK();
}

}  // namespace backy::sources
