#include "backup/restore.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "backup/progress.h"
#include "backup/workers.h"
#ifdef BACKY_WITH_RBD
#include "backup/rbd_sink.h"
#endif
#include "store/fs_util.h"

namespace backy::backup {

namespace {

class FdSink : public RestoreSink {
 public:
  FdSink(int fd, std::string name, bool owns, bool sparse)
      : fd_(fd), name_(std::move(name)), owns_(owns), sparse_(sparse) {}
  ~FdSink() override {
    if (owns_ && fd_ >= 0) ::close(fd_);
  }
  Status Open(uint64_t) override { return Status::OK(); }
  bool RandomAccess() const override { return true; }
  Status Write(uint64_t offset, std::span<const uint8_t> data,
               bool zero) override {
    if (zero && sparse_) return Status::OK();
    Status s = store::PWriteAll(fd_, data, offset, name_);
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

// A regular file: written as TARGET.backy-restore-XXXX, renamed at the end.
class FileSink final : public FdSink {
 public:
  FileSink(std::string target, std::string tmp, int fd)
      : FdSink(fd, tmp, true, true), target_(std::move(target)) {}
  Status Open(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return Status::FromErrno(errno, "truncate", name_);
    }
    return Status::OK();
  }
  Status Finish() override {
    Status s = FdSink::Finish();
    if (!s.ok()) return s;
    if (::rename(name_.c_str(), target_.c_str()) != 0) {
      return Status::FromErrno(errno, "rename", target_);
    }
    done_ = true;
    return store::SyncDir(store::DirName(target_));
  }
  void Abort() override {
    if (!done_) ::unlink(name_.c_str());
  }
  ~FileSink() override { Abort(); }

 private:
  std::string target_;
  bool done_ = false;
};


}  // namespace

Result<std::unique_ptr<RestoreSink>> OpenSink(const std::string& target,
                                              const RestoreOptions& options) {
  if (target.starts_with("rbd:")) {
#ifdef BACKY_WITH_RBD
    return OpenRbdSink(target.substr(4), options);
#else
    return Status::NotSupported(
        "this backy was built without Ceph RBD support", target);
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
  struct stat st;
  if (::stat(target.c_str(), &st) == 0) {
    if (S_ISBLK(st.st_mode)) {
      if (!options.force) {
        return Status::InvalidArgument(
            "target is a block device; use --force to overwrite it", target);
      }
      int fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return Status::FromErrno(errno, "open", target);
      return std::unique_ptr<RestoreSink>(new FdSink(fd, target, true, false));
    }
    if (S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument("target is a directory", target);
    }
    if (!S_ISREG(st.st_mode)) {
      return Status::InvalidArgument(
          "target must be a file, a block device or '-'", target);
    }
    if (st.st_size > 0 && !options.force) {
      return Status::InvalidArgument(
          "target exists and is not empty; use --force to replace it", target);
    }
  } else if (errno != ENOENT) {
    return Status::FromErrno(errno, "stat", target);
  }
  const std::string base = target.substr(target.rfind('/') + 1);  // npos+1 == 0
  const std::string tmp = store::DirName(target) + "/." + base + ".backy-restore-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create", tmp);
  return std::unique_ptr<RestoreSink>(new FileSink(target, tmp, fd));
}

Status RunRestore(store::Repository& repo, const store::Revision& revision,
                  RestoreSink& sink, const RestoreOptions& options) {
  auto index = repo.LoadIndex(revision.id);
  if (!index.ok()) return index.status();
  if (index->image_size() != revision.size) {
    return Status::Corruption("index size differs from revision size",
                              repo.IndexPath(revision.id));
  }
  Status s = sink.Open(index->image_size());
  if (!s.ok()) {
    sink.Abort();
    return s;
  }
  const size_t slots = index->slot_count();
  // Reading chunks waits on the disk more than on the CPU: more readers
  // than cores keep the disk busy.
  const unsigned workers = options.workers ? options.workers
                                           : std::max(4u, 2 * WorkerCount(0));
  const size_t window = 2 * workers;  // buffers in flight, bounds memory

  struct Buffer {
    std::vector<uint8_t> data;
    bool ready = false;
    bool zero = false;
    bool written = false;  // the worker wrote it (random-access sink)
    Status status;
  };
  const bool parallel_writes = sink.RandomAccess();
  std::vector<Buffer> ring(window);
  std::mutex mu;
  std::condition_variable cv;
  size_t next_claim = 0;   // GUARDED_BY(mu)
  size_t next_write = 0;   // GUARDED_BY(mu)
  bool stop = false;       // GUARDED_BY(mu)
  auto cancelled = [&] {
    return options.cancel && options.cancel->load(std::memory_order_relaxed);
  };

  auto worker = [&] {
    std::vector<uint8_t> tmp;
    while (true) {
      size_t i;
      {
        std::unique_lock<std::mutex> l(mu);
        cv.wait(l, [&] { return stop || next_claim >= slots || next_claim < next_write + window; });
        if (stop || next_claim >= slots) return;
        i = next_claim++;
      }
      Buffer& b = ring[i % window];
      Status st;
      bool zero = index->IsZero(i);
      const uint32_t len = index->SlotLength(i);
      if (!zero) {
        st = repo.chunks().Get(index->slot(i), &tmp);
        if (st.ok() && tmp.size() != len) {
          st = Status::Corruption("chunk " + index->slot(i).Hex() +
                                      " has the wrong size for slot " +
                                      std::to_string(i),
                                  repo.chunks().ChunkName(index->slot(i)));
        }
      }
      // A file or block device takes writes in any order: write here, in
      // parallel, instead of funnelling every byte through one thread.
      bool written = false;
      if (st.ok() && parallel_writes && !zero) {
        st = sink.Write(static_cast<uint64_t>(i) * index->chunk_size(), tmp,
                        false);
        written = true;
      }
      {
        std::lock_guard<std::mutex> l(mu);
        b.status = st;
        b.zero = zero;
        b.written = written;
        if (!zero && !written) b.data.swap(tmp);
        b.ready = true;
      }
      cv.notify_all();
    }
  };

  std::vector<std::thread> threads;
  for (unsigned t = 0; t < workers; ++t) threads.emplace_back(worker);
  Progress progress("restore", index->image_size());
  std::vector<uint8_t> zeros;
  Status result;
  for (size_t i = 0; i < slots; ++i) {
    Buffer* b = &ring[i % window];
    {
      std::unique_lock<std::mutex> l(mu);
      cv.wait(l, [&] { return b->ready; });
    }
    const uint32_t len = index->SlotLength(i);
    const uint64_t offset = static_cast<uint64_t>(i) * index->chunk_size();
    if (!b->status.ok()) {
      result = b->status;
    } else if (cancelled()) {
      result = Status::Interrupted("restore interrupted");
    } else if (b->written) {
      result = Status::OK();
    } else if (b->zero) {
      if (zeros.size() < len) zeros.assign(len, 0);
      result = sink.Write(offset, {zeros.data(), len}, true);
    } else {
      result = sink.Write(offset, b->data, false);
    }
    if (!result.ok()) break;
    progress.Add(len);
    {
      std::lock_guard<std::mutex> l(mu);
      b->ready = false;
      ++next_write;
    }
    cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> l(mu);
    stop = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  if (result.ok()) result = sink.Finish();
  if (!result.ok()) {
    sink.Abort();
    return result;
  }
  return Status::OK();
}

}  // namespace backy::backup
