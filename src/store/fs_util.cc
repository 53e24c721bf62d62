#include "store/fs_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <random>

#include "store/filename.h"

namespace backy::store {

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

std::string DirName(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

Result<UniqueFd> OpenRegularFile(const std::string& path, struct stat* st) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer. It does not
  // change reads of regular files, the only ones that get past fstat.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == EISDIR) {
      return Status::Corruption("not a regular file (a directory)", path);
    }
    if (errno == ENOTDIR) {
      return Status::NotFound("a parent is not a directory", path);
    }
    return Status::FromErrno(errno, "open", path);
  }
  struct stat own;
  if (st == nullptr) st = &own;
  if (::fstat(fd.get(), st) != 0) return Status::FromErrno(errno, "stat", path);
  if (!S_ISREG(st->st_mode)) {
    const char* what = S_ISDIR(st->st_mode)    ? "a directory"
                       : S_ISFIFO(st->st_mode) ? "a FIFO"
                       : S_ISSOCK(st->st_mode) ? "a socket"
                       : S_ISCHR(st->st_mode)  ? "a character device"
                       : S_ISBLK(st->st_mode)  ? "a block device"
                                               : "of unknown type";
    return Status::Corruption(std::string("not a regular file (") + what + ")",
                              path);
  }
  return fd;
}

namespace {

Status TooLarge(const std::string& path, uint64_t size, uint64_t max_size) {
  return Status::Corruption("file is " + std::to_string(size) +
                                " bytes, more than the " +
                                std::to_string(max_size) + " allowed",
                            path);
}

template <typename Container>
Status ReadWholeFileInto(const std::string& path, Container* out,
                         uint64_t max_size) {
  struct stat st;
  auto fd = OpenRegularFile(path, &st);
  if (!fd.ok()) return fd.status();
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_size) return TooLarge(path, size, max_size);
  // One byte more than the file holds, to see it end (or grow).
  out->resize(static_cast<size_t>(std::min(size, max_size) + 1));
  size_t done = 0;
  while (true) {
    if (done == out->size()) {
      if (done > max_size) return TooLarge(path, done, max_size);
      out->resize(std::min<uint64_t>(out->size() + 4096, max_size + 1));
    }
    ssize_t n = ::read(fd->get(), out->data() + done, out->size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read", path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > max_size) return TooLarge(path, done, max_size);
  out->resize(done);
  return Status::OK();
}

}  // namespace

Status ReadWholeFile(const std::string& path, std::vector<uint8_t>* out,
                     uint64_t max_size) {
  return ReadWholeFileInto(path, out, max_size);
}

Status ReadWholeFile(const std::string& path, std::string* out,
                     uint64_t max_size) {
  return ReadWholeFileInto(path, out, max_size);
}

std::string TempPath(const std::string& dir, std::string_view hint) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[96];
  std::snprintf(buf, sizeof buf, "/.tmp-%d-%llu-%08llx-", ::getpid(),
                static_cast<unsigned long long>(counter++),
                static_cast<unsigned long long>(rng() & 0xffffffffu));
  return dir + buf + std::string(hint);
}

Result<std::vector<std::string>> ListDirectory(int dirfd,
                                               const std::string& path) {
  // fdopendir() takes the descriptor over: list through a duplicate.
  const int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return Status::FromErrno(errno, "dup", path);
  DIR* d = ::fdopendir(dup);
  if (!d) {
    const int err = errno;
    ::close(dup);
    return Status::FromErrno(err, "open directory", path);
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  // A listing cut short must not pass for the whole directory (purge
  // decides what to delete from listings).
  const int err = errno;
  ::closedir(d);
  if (err) return Status::FromErrno(err, "list directory", path);
  return names;
}

Result<std::vector<std::string>> ListDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "open directory", dir);
  return ListDirectory(fd.get(), dir);
}

Status ForEachChunkFile(
    const std::string& chunks_dir,
    const std::function<std::optional<Digest>(std::string_view)>& parse,
    const std::function<void(const Digest&)>& fn) {
  auto prefixes = ListDirectory(chunks_dir);
  if (!prefixes.ok()) return prefixes.status();
  for (const auto& p : *prefixes) {
    if (!IsChunkPrefixDirName(p)) continue;
    auto names = ListDirectory(chunks_dir + "/" + p);
    if (!names.ok()) return names.status();
    for (const auto& name : *names) {
      if (auto digest = parse(name)) fn(*digest);
    }
  }
  return Status::OK();
}

Status SyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "open directory", dir);
  if (::fsync(fd.get()) != 0) return Status::FromErrno(errno, "fsync", dir);
  return Status::OK();
}

Status MakeDirs(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::OK();
    return Status::IOError("exists and is not a directory", dir);
  }
  if (errno != ENOENT) return Status::FromErrno(errno, "stat", dir);
  std::string parent = DirName(dir);
  if (parent != dir && parent != "." && parent != "/") {
    Status s = MakeDirs(parent);
    if (!s.ok()) return s;
  }
  if (::mkdir(dir.c_str(), kPrivateDirMode) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir", dir);
  }
  return Status::OK();
}

Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> data,
                       const std::string& tmp_dir, bool sync_dir) {
  std::string tmp = TempPath(tmp_dir, "publish");
  UniqueFd fd(::open(tmp.c_str(),
                     O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                     kPrivateFileMode));
  if (fd.get() < 0) return Status::FromErrno(errno, "create", tmp);
  Status s = PWriteAll(fd.get(), data, 0, tmp);
  if (s.ok() && ::fsync(fd.get()) != 0)
    s = Status::FromErrno(errno, "fsync", tmp);
  if (s.ok() && ::close(fd.release()) != 0) {
    s = Status::FromErrno(errno, "close", tmp);
  }
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = Status::FromErrno(errno, "rename", path);
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  if (sync_dir) return SyncDir(DirName(path));
  return Status::OK();
}

Status WriteFileAtomic(const std::string& path, std::string_view data,
                       const std::string& tmp_dir, bool sync_dir) {
  return WriteFileAtomic(
      path,
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()),
                               data.size()),
      tmp_dir, sync_dir);
}

FileLock& FileLock::operator=(FileLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {
// Opens (creating if missing) a lock file. flock(2) needs no write access:
// a lock file we may only read (backy 2.x left its .backup and .purge mode
// 0440; a read-only mount) is opened read-only.
Result<UniqueFd> OpenLockFile(const std::string& path) {
  UniqueFd fd(
      ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kPrivateFileMode));
  if (fd.get() < 0 && (errno == EACCES || errno == EROFS)) {
    fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  }
  if (fd.get() < 0) return Status::FromErrno(errno, "open lock file", path);
  return fd;
}
}  // namespace

Result<FileLock> FileLock::Acquire(const std::string& path, Mode mode,
                                   std::string_view holder_note) {
  auto opened = OpenLockFile(path);
  if (!opened.ok()) return opened.status();
  UniqueFd fd = std::move(*opened);
  int op = (mode == Mode::kExclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  while (::flock(fd.get(), op) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      std::string holder;
      (void)ReadWholeFile(path, &holder);
      while (!holder.empty() && (holder.back() == '\n')) holder.pop_back();
      std::string msg = "repository is locked";
      if (!holder.empty()) msg += " by " + holder;
      return Status::Busy(msg, path);
    }
    return Status::FromErrno(errno, "lock", path);
  }
  if (mode == Mode::kExclusive && !holder_note.empty()) {
    std::string note(holder_note);
    note += "\n";
    if (::ftruncate(fd.get(), 0) == 0) {
      (void)PWriteAll(
          fd.get(),
          std::span<const uint8_t>(
              reinterpret_cast<const uint8_t*>(note.data()), note.size()),
          0, path);
    }
  }
  return FileLock(fd.release());
}

}  // namespace backy::store

namespace backy::store {

Result<FileLock> FileLock::AcquireWaiting(
    const std::string& path, Mode mode, const std::function<void()>& on_wait) {
  auto lock = Acquire(path, mode);
  if (!lock.status().IsBusy()) return lock;
  if (on_wait) on_wait();
  auto opened = OpenLockFile(path);
  if (!opened.ok()) return opened.status();
  UniqueFd fd = std::move(*opened);
  while (::flock(fd.get(), mode == Mode::kExclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "lock", path);
  }
  return FileLock(fd.release());
}

}  // namespace backy::store
