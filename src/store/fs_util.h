// Small POSIX file helpers shared by the store: reading whole files,
// publishing files atomically, fsync of directories, advisory locks.
//
// Repository files are private: every directory these helpers create is
// mode 0700 and every file 0600 (see man/backy-store.5). Reads refuse
// anything but a regular file and never read more than the caller's
// maximum, so a damaged or hostile file (a FIFO, /dev/zero, a 100 GiB
// sparse file) is a Corruption error naming it, never a hang or an
// unbounded allocation.
//
// Every function returns a Status naming the path involved. All functions
// are safe for concurrent use on different paths.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "store/digest.h"
#include "store/file_io.h"
#include "store/status.h"

namespace backy::store {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
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

// Mode of every file the store creates, and of its directories.
inline constexpr unsigned kPrivateFileMode = 0600;
inline constexpr unsigned kPrivateDirMode = 0700;

// The default cap of ReadWholeFile(): far above any YAML file backy
// writes, far below what would strain memory.
inline constexpr uint64_t kDefaultMaxReadSize = 16 << 20;

// Opens `path` read-only, following symlinks, and checks that it is a
// regular file: anything else (a directory, FIFO, socket or device) is
// Corruption naming the path — opening a FIFO does not wait for a writer.
// `st` (optional) receives its fstat(). NotFound when it does not exist.
Result<UniqueFd> OpenRegularFile(const std::string& path,
                                 struct stat* st = nullptr);

// Reads the whole regular file at `path` into `out` (replaced). A file
// larger than `max_size` bytes is Corruption naming the path and both
// sizes, detected before anything is read (and again if it grows while
// being read). Refuses non-regular files as OpenRegularFile() does.
Status ReadWholeFile(const std::string& path, std::vector<uint8_t>* out,
                     uint64_t max_size = kDefaultMaxReadSize);
Status ReadWholeFile(const std::string& path, std::string* out,
                     uint64_t max_size = kDefaultMaxReadSize);

// Writes `data` to a new temporary file (mode 0600) in `tmp_dir`, fsyncs it,
// renames it to `path` and, with `sync_dir`, fsyncs the directory of
// `path`. Either the old
// content or the new one is visible afterwards, never a mix. On failure the
// temporary file is removed. `tmp_dir` must be on the same file system as
// `path`.
Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> data,
                       const std::string& tmp_dir, bool sync_dir = true);
Status WriteFileAtomic(const std::string& path, std::string_view data,
                       const std::string& tmp_dir, bool sync_dir = true);

// The names in directory `dir` ("." and ".." left out), in no particular
// order. An error naming `dir` when it cannot be opened or read to the end.
Result<std::vector<std::string>> ListDirectory(const std::string& dir);
// The same for the directory open as `dirfd` (which stays open and
// unchanged), for callers that opened it without following symlinks;
// errors name `path`.
Result<std::vector<std::string>> ListDirectory(int dirfd,
                                               const std::string& path);

// Calls `fn` for every file in the prefix directories of `chunks_dir`
// (IsChunkPrefixDirName) whose name `parse` turns into a digest: the walk
// of FileChunkStore::List and LegacyChunkStore::List, with their file-name
// parsers. Fails when a directory cannot be listed.
Status ForEachChunkFile(
    const std::string& chunks_dir,
    const std::function<std::optional<Digest>(std::string_view)>& parse,
    const std::function<void(const Digest&)>& fn);

// fsync() on a directory, so renames into it are durable.
Status SyncDir(const std::string& dir);

// Creates `dir` (and missing parents), each new directory mode 0700;
// existing directories are left as they are. Fails when `dir` exists but
// is not a directory.
Status MakeDirs(const std::string& dir);

// A unique temporary file name inside `dir`
// ("dir/.tmp-<pid>-<n>-<rand>-<hint>").
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
  // The lock file is created mode 0600 if missing.
  // `holder_note` (e.g. "backup (pid 123)") is written into the lock file for
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
