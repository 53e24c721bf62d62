#include "store/file_io.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace backy {

Status PWriteAll(int fd, std::span<const uint8_t> data, uint64_t offset,
                 const std::string& name) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write", name);
    }
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status PReadNoWait(int fd, std::span<uint8_t> data, uint64_t offset,
                   const std::string& name) {
  size_t done = 0;
  while (done < data.size()) {
    struct iovec iov = {data.data() + done, data.size() - done};
    ssize_t n =
        ::preadv2(fd, &iov, 1, static_cast<off_t>(offset + done), RWF_NOWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EOPNOTSUPP || errno == ENOSYS) {
        return Status::WouldBlock("data not in the page cache", name);
      }
      return Status::FromErrno(errno, "read", name);
    }
    if (n == 0)
      return Status::Corruption("short read: file is truncated", name);
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

Status PReadAll(int fd, std::span<uint8_t> data, uint64_t offset,
                const std::string& name) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pread(fd, data.data() + done, data.size() - done,
                        static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read", name);
    }
    if (n == 0)
      return Status::Corruption("short read: file is truncated", name);
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

}  // namespace backy
