#include "store/revision_cache.h"

#include <sys/stat.h>

#include <cerrno>
#include <ctime>

namespace backy::store {

bool RevisionCache::DirTime::operator==(const DirTime& o) const {
  return dev == o.dev && ino == o.ino && mtime.tv_sec == o.mtime.tv_sec &&
         mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
         ctime.tv_nsec == o.ctime.tv_nsec;
}

Result<std::vector<RevisionCache::DirTime>> RevisionCache::Stamp() const {
  std::vector<DirTime> stamp;
  for (const auto& dir : repo_.RevisionDirectories()) {
    struct stat st;
    DirTime t;
    if (::stat(dir.c_str(), &st) == 0) {
      t = {st.st_dev, st.st_ino, st.st_mtim, st.st_ctim};
    } else if (errno != ENOENT) {
      return Status::FromErrno(errno, "stat", dir);
    }
    stamp.push_back(t);
  }
  return stamp;
}

bool RevisionCache::Settled(const std::vector<DirTime>& stamp) const {
  struct timespec now;
  ::clock_gettime(CLOCK_REALTIME, &now);
  for (const auto& t : stamp) {
    for (const auto& ts : {t.mtime, t.ctime}) {
      // A time in the future (clock skew) is not settled either.
      if (ts.tv_sec > now.tv_sec - settle_.count()) return false;
    }
  }
  return true;
}

Result<RevisionCache::List> RevisionCache::Get() {
  std::lock_guard<std::mutex> l(mu_);
  auto stamp = Stamp();
  if (!stamp.ok()) return stamp.status();
  // No directories to stat (a repository in a pool): no shortcut, the
  // list is read each time (one omap read of the head object).
  if (list_ && settled_ && !stamp->empty() && *stamp == stamp_) return list_;
  // The stamp is taken before the read: a change during the read makes
  // the next Get() see a different stamp and read again.
  auto revs = repo_.Revisions();
  if (!revs.ok()) return revs.status();
  ++reads_;
  list_ = std::make_shared<const std::vector<Revision>>(std::move(*revs));
  stamp_ = std::move(*stamp);
  settled_ = Settled(stamp_);
  return list_;
}

uint64_t RevisionCache::reads() const {
  std::lock_guard<std::mutex> l(mu_);
  return reads_;
}

}  // namespace backy::store
