#include "backup/restore.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "backup/parallel_for.h"
#include "backup/progress.h"
#ifdef BACKY_WITH_RBD
#include "backup/rbd_sink.h"
#endif
#include "store/fs_util.h"
#include "store/test_point.h"

namespace backy::backup {

namespace {

// The largest write of zeros to a sink that needs them written.
constexpr uint64_t kZeroPiece = 16 << 20;

class FdSink : public RestoreSink {
 public:
  FdSink(int fd, std::string name, bool owns, bool sparse)
      : fd_(fd), name_(std::move(name)), owns_(owns), sparse_(sparse) {}
  ~FdSink() override {
    if (owns_ && fd_ >= 0) ::close(fd_);
  }
  Status Open(uint64_t) override { return Status::OK(); }
  bool RandomAccess() const override { return true; }
  bool SkipsZeros() const override { return sparse_; }
  Status Write(uint64_t offset, std::span<const uint8_t> data,
               bool zero) override {
    if (zero && sparse_) return Status::OK();
    Status s = PWriteAll(fd_, data, offset, name_);
    // Start write-back now: the final fsync then finds little left, and
    // the disk writes while we read and decode the next chunks.
    if (s.ok()) {
      (void)::sync_file_range(fd_, static_cast<off_t>(offset),
                              static_cast<off_t>(data.size()),
                              SYNC_FILE_RANGE_WRITE);
    }
    return s;
  }
  Status Finish() override {
    if (::fsync(fd_) != 0) return Status::FromErrno(errno, "fsync", name_);
    return Status::OK();
  }
  void Abort() override {}

 protected:
  int fd_;
  std::string name_;
  bool owns_;
  bool sparse_;
};

// stdout: a stream; write() in order, no seeking.
class StreamSink final : public FdSink {
 public:
  StreamSink() : FdSink(STDOUT_FILENO, "stdout", false, false) {}
  Status Write(uint64_t, std::span<const uint8_t> data, bool) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "write", name_);
      }
      done += static_cast<size_t>(n);
    }
    return Status::OK();
  }
  bool RandomAccess() const override { return false; }
  Status Finish() override { return Status::OK(); }  // pipes cannot fsync
};

// A random, unpredictable name for a temporary file next to `target`:
// "DIR/.NAME.backy-restore-<16 hex digits>".
std::string RandomTempName(const std::string& target) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string base = target.substr(target.rfind('/') + 1);  // npos+1 == 0
  if (base.size() > 200) base.resize(200);  // stay under NAME_MAX
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx",
                static_cast<unsigned long long>(rng()));
  return store::DirName(target) + "/." + base + ".backy-restore-" + suffix;
}

// Gives the anonymous (O_TMPFILE) file `fd` the name `path`; EEXIST when
// `path` exists (linkat never follows or replaces it).
int LinkAnonymous(int fd, const std::string& path) {
  if (::linkat(fd, "", AT_FDCWD, path.c_str(), AT_EMPTY_PATH) == 0) return 0;
  if (errno == EEXIST) return EEXIST;
  // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc works for everyone.
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(),
               AT_SYMLINK_FOLLOW) == 0) {
    return 0;
  }
  return errno;
}

// A regular file. Written as a new file in TARGET's directory — anonymous
// (O_TMPFILE) where the file system supports it, else created O_EXCL under
// a random name — which gets a random name at the end (if anonymous) and is
// renamed over TARGET. No existing name in the directory is ever opened, so
// a symlink planted there is never followed; a symlink at TARGET is
// replaced by the rename, and what it points to is left alone.
class FileSink final : public FdSink {
 public:
  // `tmp` is the temporary file's name, or empty when `fd` is anonymous.
  FileSink(std::string target, std::string tmp, int fd)
      : FdSink(fd, tmp.empty() ? target : tmp, true, true),
        target_(std::move(target)),
        tmp_(std::move(tmp)) {}
  Status Open(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return Status::FromErrno(errno, "truncate", name_);
    }
    return Status::OK();
  }
  Status Finish() override {
    Status s = FdSink::Finish();
    if (!s.ok()) return s;
    if (tmp_.empty()) {
      int err = EEXIST;
      for (int attempt = 0; attempt < 100 && err == EEXIST; ++attempt) {
        tmp_ = RandomTempName(target_);
        err = LinkAnonymous(fd_, tmp_);
      }
      if (err != 0) {
        std::string failed = tmp_;
        tmp_.clear();
        return Status::FromErrno(err, "link restored file", failed);
      }
    }
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) {
      return Status::FromErrno(errno, "rename", target_);
    }
    done_ = true;
    // The directory belongs to whoever may write it: make sure the name
    // now holds the file we wrote, not one swapped in meanwhile.
    struct stat mine, there;
    if (::fstat(fd_, &mine) != 0 || ::lstat(target_.c_str(), &there) != 0 ||
        mine.st_dev != there.st_dev || mine.st_ino != there.st_ino) {
      return Status::IOError(
          "target was replaced by someone else while restoring", target_);
    }
    return store::SyncDir(store::DirName(target_));
  }
  void Abort() override {
    if (!done_ && !tmp_.empty()) ::unlink(tmp_.c_str());
  }
  ~FileSink() override { Abort(); }

 private:
  std::string target_;
  std::string tmp_;
  bool done_ = false;
};

// Opens a new temporary file for restoring into the regular file `target`.
Result<std::unique_ptr<RestoreSink>> OpenFileSink(const std::string& target) {
  const std::string dir = store::DirName(target);
  int fd = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) {
    // Without CAP_DAC_READ_SEARCH an anonymous file can be named only
    // through /proc: without /proc, use a named file instead.
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    if (::geteuid() == 0 || ::access(proc.c_str(), F_OK) == 0) {
      return std::unique_ptr<RestoreSink>(new FileSink(target, "", fd));
    }
    ::close(fd);
  } else if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
    return Status::FromErrno(errno, "create a file in", dir);
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    const std::string tmp = RandomTempName(target);
    fd = ::open(tmp.c_str(),
                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      return std::unique_ptr<RestoreSink>(new FileSink(target, tmp, fd));
    }
    if (errno != EEXIST) return Status::FromErrno(errno, "create", tmp);
  }
  return Status::IOError("no free temporary file name", dir);
}

// Opens the block device at `target` for writing in place. `seen` is what
// lstat() (or, through a symlink, stat()) found there; the device opened
// must be that one, or nothing is written. With `link` (TARGET is a
// symlink, `link` its lstat()), the link is followed only when root or
// this user owns it and it is still the same link afterwards.
Result<std::unique_ptr<RestoreSink>> OpenBlockSink(const std::string& target,
                                                   const struct stat& seen,
                                                   const struct stat* link) {
  const uid_t me = ::geteuid();
  if (link && link->st_uid != 0 && link->st_uid != me) {
    return Status::InvalidArgument(
        "target is a symbolic link to a block device owned by another user "
        "(uid " +
            std::to_string(link->st_uid) + "); refusing to follow it",
        target);
  }
  // O_NONBLOCK: never hang opening a FIFO swapped in meanwhile.
  const int flags =
      O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC | (link ? 0 : O_NOFOLLOW);
  store::UniqueFd fd(::open(target.c_str(), flags));
  if (fd.get() < 0) {
    if (errno == ELOOP) {
      return Status::InvalidArgument(
          "target became a symbolic link while opening; nothing written",
          target);
    }
    return Status::FromErrno(errno, "open", target);
  }
  struct stat st, now_link, now;
  bool same = ::fstat(fd.get(), &st) == 0 && S_ISBLK(st.st_mode) &&
              st.st_rdev == seen.st_rdev;
  if (same && link) {
    same = ::lstat(target.c_str(), &now_link) == 0 &&
           now_link.st_dev == link->st_dev && now_link.st_ino == link->st_ino &&
           ::stat(target.c_str(), &now) == 0 && now.st_rdev == st.st_rdev;
  }
  if (!same) {
    return Status::InvalidArgument(
        "target changed while opening it; nothing written", target);
  }
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) {
    return Status::FromErrno(errno, "fcntl", target);
  }
  return std::unique_ptr<RestoreSink>(
      new FdSink(fd.release(), target, true, false));
}

}  // namespace

bool RevisionRemoved(const store::Repository& repo,
                     const store::Revision& revision) {
  auto has = repo.HasRevision(revision);
  return has.ok() && !*has;
}

Result<std::unique_ptr<RestoreSink>> OpenSink(const std::string& target,
                                              const RestoreOptions& options) {
  if (target.starts_with("rbd:")) {
#ifdef BACKY_WITH_RBD
    return OpenRbdSink(target.substr(4), options);
#else
    return Status::NotSupported("this backy was built without Ceph RBD support",
                                target);
#endif
  }
  if (target == "-") {
    if (::isatty(STDOUT_FILENO)) {
      return Status::InvalidArgument(
          "refusing to write an image to a terminal; redirect stdout",
          "stdout");
    }
    return std::unique_ptr<RestoreSink>(new StreamSink());
  }
  struct stat lst;
  if (::lstat(target.c_str(), &lst) != 0) {
    if (errno != ENOENT) return Status::FromErrno(errno, "stat", target);
    return OpenFileSink(target);
  }
  if (S_ISLNK(lst.st_mode)) {
    struct stat st;
    const bool device = ::stat(target.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
    if (!options.force) {
      return Status::InvalidArgument(
          device ? "target is a symbolic link to a block device; use --force "
                   "to write to the device"
                 : "target is a symbolic link; use --force to replace the "
                   "link (what it points to is left alone)",
          target);
    }
    if (device) return OpenBlockSink(target, st, &lst);
    return OpenFileSink(target);  // the rename replaces the link
  }
  if (S_ISBLK(lst.st_mode)) {
    if (!options.force) {
      return Status::InvalidArgument(
          "target is a block device; use --force to overwrite it", target);
    }
    return OpenBlockSink(target, lst, nullptr);
  }
  if (S_ISDIR(lst.st_mode)) {
    return Status::InvalidArgument("target is a directory", target);
  }
  if (!S_ISREG(lst.st_mode)) {
    return Status::InvalidArgument(
        "target must be a file, a block device or '-'", target);
  }
  if (lst.st_size > 0 && !options.force) {
    return Status::InvalidArgument(
        "target exists and is not empty; use --force to replace it", target);
  }
  return OpenFileSink(target);
}

Status RunRestore(store::Repository& repo, const store::Revision& revision,
                  RestoreSink& sink, const RestoreOptions& options) {
  // Pinned, not purge.lock: a purge may run while we read, and keeps our
  // chunks even if the revision is forgotten meanwhile.
  auto pin = repo.PinRevision(revision, "restore");
  if (!pin.ok()) return pin.status();
  TestPoint("restore-pinned");
  auto index = pin->LoadIndex();
  if (!index.ok()) {
    if (RevisionRemoved(repo, revision)) {
      return Status::NotFound(
          "revision was removed (forget or expire) before it could be read",
          revision.id);
    }
    return index.status();
  }
  if (index->image_size() != revision.size) {
    return Status::Corruption("index size differs from revision size",
                              repo.IndexName(revision));
  }
  Status s = sink.Open(index->image_size());
  if (!s.ok()) {
    sink.Abort();
    return s;
  }
  const size_t slots = index->slot_count();
  store::ChunkStore& chunks = repo.ChunksOf(revision);
  // Only data slots go through the workers and the ring: a run of zero
  // slots between two of them is one step for the writer, whatever its
  // length (a sparse 8 TiB image is mostly one such run).
  std::vector<size_t> data;
  for (size_t i = 0; i < slots; ++i) {
    if (!index->IsZero(i)) data.push_back(i);
  }
  // Reading chunks waits on the disk more than on the CPU: more readers
  // than cores keep the disk busy.
  const unsigned workers =
      options.workers ? options.workers : std::max(4u, 2 * WorkerCount(0));
  const size_t window = 2 * workers;  // buffers in flight, bounds memory

  struct Buffer {
    std::vector<uint8_t> data;
    bool ready = false;
    bool written = false;  // the worker wrote it (random-access sink)
    Status status;
  };
  const bool parallel_writes = sink.RandomAccess();
  std::vector<Buffer> ring(window);
  std::mutex mu;
  std::condition_variable cv;
  size_t next_write = 0;  // GUARDED_BY(mu): the next data[] item to write
  bool stop = false;      // GUARDED_BY(mu)
  auto cancelled = [&] {
    return options.cancel && options.cancel->load(std::memory_order_relaxed);
  };

  // Workers read data slot data[k] into ring[k % window] once the writer
  // is done with data[k - window]; this thread writes in order.
  std::vector<std::vector<uint8_t>> tmps(workers);
  auto read_slot = [&](unsigned w, size_t k) {
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return stop || k < next_write + window; });
      if (stop) return Status::OK();
    }
    const size_t i = data[k];
    std::vector<uint8_t>& tmp = tmps[w];
    Buffer& b = ring[k % window];
    const uint32_t len = index->SlotLength(i);
    Status st = chunks.Get(index->slot(i), &tmp);
    // A 2.4 revision of an image that shrank keeps the old tail in its
    // last chunk (store/legacy_repository.h): only the slot is the image.
    if (st.ok() && revision.legacy && i + 1 == slots && tmp.size() > len) {
      tmp.resize(len);
    }
    if (st.ok() && tmp.size() != len) {
      st = Status::Corruption("chunk " + index->slot(i).Hex() +
                                  " has the wrong size for slot " +
                                  std::to_string(i),
                              chunks.ChunkName(index->slot(i)));
    }
    // A file or block device takes writes in any order: write here, in
    // parallel, instead of funnelling every byte through one thread.
    bool written = false;
    if (st.ok() && parallel_writes) {
      st = sink.Write(static_cast<uint64_t>(i) * index->chunk_size(), tmp,
                      false);
      written = true;
    }
    {
      std::lock_guard<std::mutex> l(mu);
      b.status = st;
      b.written = written;
      if (!written) b.data.swap(tmp);
      b.ready = true;
    }
    cv.notify_all();
    return Status::OK();  // the writer reports b.status, in order
  };
  std::thread readers([&] {
    (void)ParallelFor(data.size(), workers, read_slot, [&] {
      std::lock_guard<std::mutex> l(mu);
      return stop;
    });
  });
  Progress progress("restore", index->image_size());
  // Zeros for the sinks that need them written (streams, block devices),
  // in large pieces. A large calloc() is usually fresh mapped pages, which
  // read as the kernel's one zero page: little memory, little cache.
  std::unique_ptr<uint8_t, decltype(&std::free)> zeros(nullptr, &std::free);
  // Writes [from, to) of the image, all zero slots, in order.
  auto write_zero_run = [&](uint64_t from, uint64_t to) {
    if (from >= to) return Status::OK();
    if (sink.SkipsZeros()) {
      progress.Add(to - from);
      return Status::OK();
    }
    if (!zeros) {
      zeros.reset(static_cast<uint8_t*>(std::calloc(kZeroPiece, 1)));
      if (!zeros) return Status::IOError("out of memory for zeros", "restore");
    }
    for (uint64_t pos = from; pos < to;) {
      if (cancelled()) return Status::Interrupted("restore interrupted");
      const uint64_t n = std::min<uint64_t>(kZeroPiece, to - pos);
      Status st = sink.Write(pos, {zeros.get(), static_cast<size_t>(n)}, true);
      if (!st.ok()) return st;
      progress.Add(n);
      pos += n;
    }
    return Status::OK();
  };
  Status result;
  uint64_t done = 0;  // the image is written up to here
  for (size_t k = 0; k < data.size(); ++k) {
    const size_t i = data[k];
    const uint32_t len = index->SlotLength(i);
    const uint64_t offset = static_cast<uint64_t>(i) * index->chunk_size();
    result = write_zero_run(done, offset);
    if (!result.ok()) break;
    Buffer* b = &ring[k % window];
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return b->ready; });
    }
    if (!b->status.ok()) {
      result = b->status;
    } else if (cancelled()) {
      result = Status::Interrupted("restore interrupted");
    } else if (!b->written) {
      result = sink.Write(offset, b->data, false);
    }
    if (!result.ok()) break;
    progress.Add(len);
    done = offset + len;
    {
      std::lock_guard<std::mutex> l(mu);
      b->ready = false;
      ++next_write;
    }
    cv.notify_all();
  }
  if (result.ok()) result = write_zero_run(done, index->image_size());
  if (result.ok() && cancelled()) {
    result = Status::Interrupted("restore interrupted");
  }
  {
    std::lock_guard<std::mutex> l(mu);
    stop = true;
  }
  cv.notify_all();
  readers.join();
  if (result.ok()) result = sink.Finish();
  if (!result.ok()) {
    sink.Abort();
    return result;
  }
  return Status::OK();
}

}  // namespace backy::backup
