// RepositoryLock: a lock on a repository, held until it is destroyed or
// released — the writer lock, purge.lock shared or exclusive. Each kind of
// repository holds it its own way: flock(2) on a lock file for a directory
// (store/fs_util.h FileLock), a RADOS lock with a lease that a keeper thread
// renews for a repository in a pool (store/rados_lease.h). Callers only keep
// it alive; Valid() says whether a lease is still held (a holder cut off
// from the cluster longer than the lease has lost it, and must not go on
// writing as if it had it). Movable, not copyable; not for concurrent use.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "store/fs_util.h"
#include "store/status.h"

namespace backy::store {

class RepositoryLock {
 public:
  // One held part (a flock'ed file, a RADOS lease).
  class Part {
   public:
    virtual ~Part() = default;
    // OK while held; an error naming the lock once it was lost.
    virtual Status Valid() const { return Status::OK(); }
  };

  RepositoryLock() = default;
  explicit RepositoryLock(std::unique_ptr<Part> part) { Add(std::move(part)); }
  // A flock'ed file as a lock.
  explicit RepositoryLock(FileLock file);
  RepositoryLock(RepositoryLock&&) noexcept = default;
  RepositoryLock& operator=(RepositoryLock&& o) noexcept {
    Release();
    parts_ = std::move(o.parts_);
    return *this;
  }
  ~RepositoryLock() { Release(); }

  // Adds a part (taken after those held already: released before them).
  void Add(std::unique_ptr<Part> part) {
    if (part) parts_.push_back(std::move(part));
  }
  void Add(RepositoryLock other) {
    for (auto& p : other.parts_) parts_.push_back(std::move(p));
    other.parts_.clear();
  }
  bool held() const { return !parts_.empty(); }
  // OK while every part is held.
  Status Valid() const {
    for (const auto& p : parts_) {
      Status s = p->Valid();
      if (!s.ok()) return s;
    }
    return Status::OK();
  }
  // Releases the parts, last taken first. Idempotent.
  void Release() {
    while (!parts_.empty()) parts_.pop_back();
  }

 private:
  std::vector<std::unique_ptr<Part>> parts_;
};

namespace internal {
class FileLockPart final : public RepositoryLock::Part {
 public:
  explicit FileLockPart(FileLock lock) : lock_(std::move(lock)) {}

 private:
  FileLock lock_;
};
}  // namespace internal

inline RepositoryLock::RepositoryLock(FileLock file) {
  if (file.held())
    Add(std::make_unique<internal::FileLockPart>(std::move(file)));
}

}  // namespace backy::store
