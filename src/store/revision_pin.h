// RevisionPin: a reader's claim on the chunks of one revision. restore,
// verify and nbd-server pin the revisions they read instead of holding
// purge.lock for their whole run, so a purge can run meanwhile: it keeps
// every chunk a live pin's index names, also once the revision has been
// forgotten or expired, until the last reader lets go. The protocol is in
// man/backy-store.5 (PINS):
//   DIR/pins/<token>.pin    flock'ed exclusively by its reader for the
//                           pin's life; a lock purge can take means the
//                           reader is gone (also after kill -9): stale
//   DIR/pins/<token>.index  a hard link to revisions/<id>.index, which
//                           keeps the index's bytes after forget unlinks
//                           that name
// A pin is made under purge.lock shared (no purge sees half of one) and
// released without it. A RevisionPin may be moved, not copied; one object
// is not for concurrent use, different pins are independent.
#pragma once

#include <sys/stat.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/fs_util.h"
#include "store/index.h"
#include "store/revision.h"

namespace backy::store {

class RevisionPin {
 public:
  // A pin kept by another kind of repository (a RADOS one keeps a pin
  // object under a lease: store/rados_repository.h). Destroying it lets go.
  class Keeper {
   public:
    virtual ~Keeper() = default;
    virtual Result<RevisionIndex> LoadIndex() const = 0;
  };

  RevisionPin() = default;
  // A pin of `revision_id` held by `keeper`.
  RevisionPin(std::string revision_id, std::unique_ptr<Keeper> keeper)
      : revision_id_(std::move(revision_id)), keeper_(std::move(keeper)) {}
  RevisionPin(RevisionPin&& o) noexcept;
  RevisionPin& operator=(RevisionPin&& o) noexcept;
  RevisionPin(const RevisionPin&) = delete;
  RevisionPin& operator=(const RevisionPin&) = delete;
  ~RevisionPin() { Release(); }

  // Pins `revision` of the repository in `dir` (Repository::PinRevision
  // is the way in). `holder` ("restore (pid 12)") is recorded for purge's
  // messages. Takes purge.lock shared while it pins, waiting for a running
  // purge. NotFound when the revision's index is gone (forgotten since it
  // was listed); Corruption when revisions/<id>.index or pins/ is not what
  // backy writes (a symlink, a directory). When pins/ cannot be written
  // (a read-only repository), the pin holds purge.lock shared for its life
  // instead, as readers did before pins. A 2.x revision (Revision::legacy)
  // is pinned as 2.x's readers did: by holding DIR/.purge shared.
  static Result<RevisionPin> Create(const std::string& dir,
                                    const Revision& revision,
                                    std::string_view holder);

  bool held() const { return !revision_id_.empty(); }
  const std::string& revision_id() const { return revision_id_; }
  // The pinned revision's index, read through the pin: the very bytes a
  // purge marks. For a 2.x revision its JSON mapping. Errors name
  // revisions/<id>.index (the file the pin links to).
  // REQUIRES: held().
  Result<RevisionIndex> LoadIndex() const;
  // Lets go: unlocks the pin file, then removes the index link and the pin
  // file (a purge finding it unlocked meanwhile removes them itself).
  // Idempotent; never fails (what is left is stale and purge removes it).
  void Release();

 private:
  std::string dir_;
  std::string revision_id_;
  bool legacy_ = false;
  std::string pin_path_;   // pins/<token>.pin; empty without a pin file
  std::string link_path_;  // pins/<token>.index
  UniqueFd pin_fd_;        // the pin file, flock'ed LOCK_EX
  FileLock lock_;  // purge.lock (read-only repository) or .purge (2.x), shared
  std::unique_ptr<Keeper> keeper_;  // instead of all the above
};

// What purge finds in DIR/pins/: the pins it must honour and those whose
// reader is gone. REQUIRES: purge.lock held exclusively (no pin is being
// made).
struct PinScan {
  struct Live {
    std::string token;
    std::string revision_id;  // from the pin file; empty when unreadable
    std::string holder;       // ditto
    UniqueFd index;           // its index link, open
    uint64_t index_size = 0;
  };
  std::vector<Live> live;
  // Tokens of pins whose reader is gone, and of index links without a pin
  // file: RemoveStalePins() deletes them.
  std::vector<std::string> stale;
  size_t ignored = 0;  // entries that are not pins, each logged as a warning
};

// Scans DIR/pins/ (none there: an empty scan). Every "<token>.pin" is
// tried with flock(LOCK_EX|LOCK_NB): taken means stale, busy means live,
// and then its index link must be there: a live pin whose link is missing
// or not a regular file is Corruption naming it (purge cannot know what it
// needs). Nothing is followed: symlinks, directories and names that are no
// pins are left alone with a warning. A pin file that cannot be opened
// (another user's) fails the scan, naming it. Changes nothing.
Result<PinScan> ScanPins(const std::string& dir);

// Deletes the stale pins `tokens` found by ScanPins(): index link first,
// then pin file. Already gone is fine. REQUIRES: purge.lock exclusively.
Status RemoveStalePins(const std::string& dir,
                       const std::vector<std::string>& tokens);

}  // namespace backy::store
