// Repository: one backed-up image's revisions (metadata + index each), its
// config and its chunk store, behind one interface with two kinds:
//
//   DirectoryRepository  a directory, self-contained on the file system
//                        (movable with rsync, no database): the default
//                        (store/directory_repository.h)
//   RadosRepository      objects in a Ceph RADOS pool, shared by several
//                        backup hosts (store/rados_repository.h)
//
// A location names one: a directory path, or rados:POOL[/NAMESPACE]/NAME
// (RepositoryLocation). Every command works on the interface; what is
// particular to a directory (its paths, a 2.x repository read in place,
// `upgrade`) stays in DirectoryRepository. Both formats are specified in
// man/backy-store.5. Leveldb keeps its storage behind Env; here the
// boundary is one level up, at the repository, because what must be atomic
// differs: a rename in a directory, one object write or omap update in RADOS.
//
// Thread-safety: safe for concurrent reads from several threads; publishing,
// updating and forgetting revisions must be done by the holder of the
// writer lock.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/chunk_format.h"
#include "store/chunk_store.h"
#include "store/index.h"
#include "store/rados_options.h"
#include "store/repository_lock.h"
#include "store/revision.h"
#include "store/revision_pin.h"
#include "store/schedule.h"

namespace backy::store {

inline constexpr int kRepositoryFormat = 1;

struct RepositoryConfig {
  // The source section as flat key/value pairs: type, filename, pool, ...
  std::map<std::string, std::string> source;
  CompressionOptions compression;
  // Written by the scheduler (or by hand); empty for a plain repository.
  Schedule schedule;
  // Read from a backy 2.x config (no `format` key): the repository is 2.x's
  // (store/legacy_repository.h) until `backy upgrade` writes ours.
  bool legacy = false;

  std::string ToYaml() const;
  static Result<RepositoryConfig> FromYaml(const std::string& text,
                                           const std::string& name);
};

// Reads and checks the index file open as `fd`, of `file_size` bytes: its
// size is checked against its header before the slots are read. Errors
// name `path`. (Repository::LoadIndex and RevisionPin::LoadIndex.)
Result<RevisionIndex> ReadIndexFile(int fd, uint64_t file_size,
                                    const std::string& path);

// Where a repository lives.
struct RepositoryLocation {
  enum class Kind { kDirectory, kRados };
  Kind kind = Kind::kDirectory;
  std::string path;  // kDirectory
  std::string pool;  // kRados
  std::string ns;    // kRados; empty: the pool's default namespace
  std::string name;  // kRados: the repository's name within pool/namespace

  // "rados:POOL/NAME", "rados:POOL/NAMESPACE/NAME", or anything else as a
  // directory path. InvalidArgument for a rados: location with empty or
  // extra parts, or a NAME that is not [A-Za-z0-9_.-]+ (not "." or "..").
  static Result<RepositoryLocation> Parse(std::string_view location);
  // True when `location` starts with "rados:".
  static bool IsRados(std::string_view location);
  std::string ToString() const;
};

// What opening a repository may need beyond its location.
struct RepositoryOptions {
  RadosOptions rados;  // for rados: locations
};

class DirectoryRepository;

class Repository {
 public:
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;
  virtual ~Repository() = default;

  // Creates a repository at `location`. InvalidArgument when one exists.
  static Status Init(const std::string& location,
                     const RepositoryConfig& config,
                     const RepositoryOptions& options = {});
  // Replaces the config of the repository at `location` atomically (the
  // scheduler writes each job's source and schedule this way).
  static Status WriteConfig(const std::string& location,
                            const RepositoryConfig& config,
                            const RepositoryOptions& options = {});
  // Opens an existing repository. NotFound when there is none at
  // `location`; Corruption when its config cannot be used.
  static Result<std::unique_ptr<Repository>> Open(
      const std::string& location, const RepositoryOptions& options = {});

  // The location as given: a directory, or rados:POOL[/NS]/NAME.
  const std::string& location() const { return location_; }
  const RepositoryConfig& config() const { return config_; }
  // A backy 2.x repository read in place (only a directory can be one):
  // its revisions are listed with Revision::legacy, and read through
  // ChunksOf() and LoadIndex(Revision).
  bool legacy() const { return config_.legacy; }
  // OK, or for a 2.x repository NotSupported naming it and saying to run
  // `backy upgrade` before `what` ("backup", "expire", "purge").
  Status RequireCurrentFormat(std::string_view what) const;
  // "file:/images/vm.raw", "ceph-rbd:pool/image": the source, for humans.
  std::string SourceName() const;
  // The same for a config's source section.
  static std::string SourceNameOf(
      const std::map<std::string, std::string>& source);
  // The directory repository this is, or nullptr (for what only a
  // directory has: upgrade, its paths).
  virtual DirectoryRepository* AsDirectory() { return nullptr; }

  // The chunk store of revisions in the current form (all of them, unless
  // legacy()).
  virtual ChunkStore& chunks() = 0;
  // The store holding the chunks `revision`'s index names: a read-only
  // store of 2.x chunks for a 2.x revision, chunks() otherwise.
  virtual ChunkStore& ChunksOf(const Revision& revision) {
    (void)revision;
    return chunks();
  }

  using DamagedRevision = store::DamagedRevision;
  struct RevisionList {
    std::vector<Revision> healthy;         // oldest first (timestamp, then id)
    std::vector<DamagedRevision> damaged;  // by id
  };
  // Reads every published revision's metadata. A damaged one does not
  // fail the scan: it is listed in `damaged`, and the others stay usable.
  // Fails only when the revisions cannot be listed.
  virtual Result<RevisionList> ScanRevisions() const = 0;
  // The healthy published revisions, oldest first (by timestamp, then
  // id): what every command works on (SPECs, parents of backups, expire).
  // Damaged ones are skipped, each logged once as a warning per
  // Repository object; ScanRevisions() lists them.
  Result<std::vector<Revision>> Revisions() const;
  // True while revision `id` is published (for telling "removed while
  // being read" from damage).
  virtual Result<bool> HasRevision(const Revision& revision) const = 0;
  // The directories whose entries ScanRevisions() reads, for RevisionCache
  // (store/revision_cache.h), which stats them to know the list is
  // unchanged. Empty: no such shortcut, the list is read each time.
  virtual std::vector<std::string> RevisionDirectories() const { return {}; }
  // The ids of every stored index — published, damaged or left over — for
  // purge, which must keep every chunk any of them names.
  virtual Result<std::vector<std::string>> IndexIds() const = 0;
  // Reads and checks a revision's index. Corruption naming it when it is
  // missing or damaged; its size is checked against its header before the
  // slots are read.
  virtual Result<RevisionIndex> LoadIndex(const std::string& id) const = 0;
  // The index of `revision` in whichever form it is (a 2.x revision's JSON
  // mapping names chunks of ChunksOf(revision)).
  virtual Result<RevisionIndex> LoadIndex(const Revision& revision) const {
    return LoadIndex(revision.id);
  }
  // Names for messages: the config, and `revision`'s index.
  virtual std::string ConfigName() const = 0;
  virtual std::string IndexName(const Revision& revision) const = 0;
  // The repository's own log file (backy.log), or "" when it has none.
  virtual std::string LogFile() const = 0;

  // Publishes a revision: its index, then its metadata, each atomically;
  // it becomes visible at once and whole, never half.
  // REQUIRES: every chunk the index names is durable (ChunkStore::Sync),
  // and the caller holds the writer lock.
  // Test point "index" (store/test_point.h): after the index is stored.
  virtual Status Publish(const Revision& revision,
                         const RevisionIndex& index) = 0;
  // Rewrites the metadata of an existing revision (tags, trust).
  virtual Status UpdateMetadata(const Revision& revision) = 0;
  // Removes a revision: metadata first (it disappears at once), then its
  // index. Its chunks stay until the next purge.
  virtual Status Forget(const std::string& id) = 0;

  // The writer lock (backup, forget, expire, distrust; verify while it
  // updates revisions): exclusive, fails with Busy at once if held. Also
  // takes purge.lock shared, so no purge runs meanwhile.
  // `what` (e.g. "backup") is recorded for the Busy message.
  using Locks = RepositoryLock;
  virtual Result<RepositoryLock> LockWriter(std::string_view what) = 0;
  // The scheduler's per-job lock, held for a whole run (backup, expire,
  // purge, copy): several hosts scheduling one pool's repositories each
  // run a job only while holding it. Busy naming the holder when another
  // has it. `holder` ("scheduler") is recorded for that message. Apart from
  // the writer lock (the run's own backy processes take that). A directory
  // needs none (one scheduler per base-dir holds the scheduler lock): the
  // default is granted at once and holds nothing.
  virtual Result<RepositoryLock> LockJob(std::string_view holder) {
    (void)holder;
    return RepositoryLock();
  }
  // purge.lock shared: every holder of the writer lock, through
  // LockWriter, and readers that read a whole repository. Waits while a
  // purge runs (purges are short), saying so in the log. Readers of one
  // revision pin it instead (PinRevision).
  virtual Result<RepositoryLock> LockReader() = 0;
  // A reader's claim on `revision` (store/revision_pin.h): a purge keeps
  // every chunk its index names, also after the revision is forgotten,
  // until the pin is released. `what` ("restore", "nbd-server") and the
  // pid are recorded for purge's messages. NotFound when the revision was
  // removed since it was listed. Safe to call from several threads.
  virtual Result<RevisionPin> PinRevision(const Revision& revision,
                                          std::string_view what) = 0;
  // For purge: purge.lock exclusive, waiting at most a second (readers
  // hold it shared only while they pin). Busy when a backup, forget,
  // expire, distrust, upgrade or verify's update is running.
  virtual Result<RepositoryLock> LockPurge() = 0;

  // For purge, REQUIRES: LockPurge() held. Calls `mark` with the index of
  // every live pin (read through the pin: the very bytes its reader
  // reads) and what to call it in messages; an index that cannot be read
  // is passed as its error. Returns the tokens of pins whose reader is
  // gone, for RemoveStalePins.
  struct PinnedIndex {
    std::string revision_id;  // empty when the pin does not say
    std::string name;         // for messages
  };
  virtual Result<std::vector<std::string>> ForEachLivePin(
      const std::function<Status(const PinnedIndex&,
                                 const Result<RevisionIndex>&)>& mark) = 0;
  virtual Status RemoveStalePins(const std::vector<std::string>& tokens) = 0;

  // Removes leftovers of crashed writers: temporary files and indexes
  // without metadata (but not those a live pin names).
  // REQUIRES: the writer lock, or LockPurge().
  virtual Status RemoveLeftovers() = 0;

 protected:
  Repository(std::string location, RepositoryConfig config);

 private:
  const std::string location_;
  const RepositoryConfig config_;
  mutable std::mutex warned_mu_;
  mutable std::set<std::string> warned_;  // GUARDED_BY(warned_mu_)
};

}  // namespace backy::store
