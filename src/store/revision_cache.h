// RevisionCache: a repository's revision list (Repository::Revisions()),
// read again only when it may have changed.
//
// Reading the list reads every revision's metadata file; a server that
// resolved each export name or listing with a fresh read spent time
// quadratic in the number of revisions (an NBD client lists, then asks for
// each export: 1000 revisions took 112 s). The list changes only by a
// rename or unlink in the directories Repository::RevisionDirectories()
// names, and each such change sets the directory's mtime and ctime, so a
// stat() of each is enough to know the cached list is still the list.
//
// One trap, as with git's "racy" index entries: a file system stores
// times in ticks (a jiffy, a second on some), so a change made in the
// same tick as the one the list was read after leaves the times as they
// were. A list is therefore trusted only once its directories' times are
// older than kSettle; until then each Get() reads it again (cheap: that
// is only right after a change).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include "store/repository.h"
#include "store/revision.h"
#include "store/status.h"

namespace backy::store {

class RevisionCache {
 public:
  using List = std::shared_ptr<const std::vector<Revision>>;

  // Longer than any file system's time granularity we may meet (FAT and
  // some network file systems: 1 to 2 s) plus a margin for clock skew.
  static constexpr std::chrono::seconds kSettle{3};

  // `repo` must outlive the cache. `settle` is for tests.
  explicit RevisionCache(const Repository& repo,
                         std::chrono::seconds settle = kSettle)
      : repo_(repo), settle_(settle) {}

  // The healthy revisions, oldest first, as Repository::Revisions(); the
  // same list object as long as nothing changed. Thread-safe; concurrent
  // callers wait for one read.
  Result<List> Get();

  // How many times the list was read from disk (for tests).
  uint64_t reads() const;

 private:
  struct DirTime {
    dev_t dev = 0;
    ino_t ino = 0;
    struct timespec mtime = {};
    struct timespec ctime = {};
    bool operator==(const DirTime& o) const;
  };
  // The times of every directory; a missing one (2.x, not upgraded) is
  // recorded as all zeros.
  Result<std::vector<DirTime>> Stamp() const;
  // True if every time in `stamp` is at least settle_ before now.
  bool Settled(const std::vector<DirTime>& stamp) const;

  const Repository& repo_;
  const std::chrono::seconds settle_;
  mutable std::mutex mu_;
  List list_;                   // null until first read
  std::vector<DirTime> stamp_;  // taken before list_ was read
  bool settled_ = false;        // stamp_ was settled when taken
  uint64_t reads_ = 0;
};

}  // namespace backy::store
