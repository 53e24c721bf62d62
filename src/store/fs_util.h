// Small POSIX file helpers shared by the store: reading whole files,
// publishing files atomically, fsync of directories, advisory locks.
//
// Every function returns a Status naming the path involved. All functions
// are safe for concurrent use on different paths.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "store/file_io.h"
#include "store/status.h"

namespace backy::store {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_;
};

// The directory part of `path`: "a/b" → "a", "/b" → "/", "b" → ".".
std::string DirName(const std::string& path);

// Reads the whole file at `path` into `out`.
Status ReadWholeFile(const std::string& path, std::vector<uint8_t>* out);
Status ReadWholeFile(const std::string& path, std::string* out);

// Writes `data` to a new temporary file in `tmp_dir`, fsyncs it, renames it
// to `path` and fsyncs the directory of `path`. Either the old content or
// the new one is visible afterwards, never a mix. On failure the temporary
// file is removed. `tmp_dir` must be on the same file system as `path`.
Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> data,
                       const std::string& tmp_dir, bool sync_dir = true);
Status WriteFileAtomic(const std::string& path, std::string_view data,
                       const std::string& tmp_dir, bool sync_dir = true);

// fsync() on a directory, so renames into it are durable.
Status SyncDir(const std::string& dir);

// Creates `dir` (and parents) if missing.
Status MakeDirs(const std::string& dir);

// A unique temporary file name inside `dir` ("dir/.tmp-<pid>-<n>-<rand>").
std::string TempPath(const std::string& dir, std::string_view hint);

// An flock(2)-based advisory lock on a file, released on destruction (or
// when the process dies, so a kill -9 never leaves a stale lock).
class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  FileLock() = default;
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&& o) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  // Takes the lock without waiting; Busy when someone else holds it.
  // `holder_note` (e.g. "backup pid 123") is written into the lock file for
  // exclusive locks so the Busy message can say who holds it.
  static Result<FileLock> Acquire(const std::string& path, Mode mode,
                                  std::string_view holder_note = {});
  // Like Acquire, but waits for the lock; `on_wait` runs once before
  // waiting (to say so).
  static Result<FileLock> AcquireWaiting(const std::string& path, Mode mode,
                                         const std::function<void()>& on_wait);
  bool held() const { return fd_ >= 0; }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace backy::store
