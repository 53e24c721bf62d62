#include "store/file_io.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

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

std::string TempDirectory() {
  const char* t = std::getenv("TMPDIR");
  return (t != nullptr && *t != '\0') ? t : "/var/tmp";
}

Result<int> OpenUnnamedFile(const std::string& dir, const std::string& what) {
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    // O_TMPFILE is not supported everywhere: a private name, unlinked.
    std::string path = dir + "/.backy-scratch-XXXXXX";
    fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) return Status::FromErrno(errno, what, dir);
    ::unlink(path.c_str());
  }
  return fd;
}

}  // namespace backy
