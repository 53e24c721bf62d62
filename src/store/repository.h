// Repository: one backed-up image's directory — its config, its revisions
// (metadata + index each) and its chunk store. Self-contained on the file
// system: it can be moved with rsync; no database.
//
//   DIR/config                  YAML: format, source, store options
//   DIR/lock                    flock: the writer lock, held exclusively by
//                               backup, forget, expire, distrust, and
//                               verify while it updates revisions
//   DIR/purge.lock              flock: shared by writers for their run
//                               and by readers while they pin a revision,
//                               exclusive by purge
//   DIR/pins/<token>.pin|.index revisions pinned by readers (restore,
//                               verify, nbd-server): store/revision_pin.h
//   DIR/revisions/<id>.rev      revision metadata (YAML), published last
//   DIR/revisions/<id>.index    revision index (binary)
//   DIR/chunks/<xx>/<digest>.chunk
//   DIR/tmp/                    temporary files, same file system
//   DIR/quarantine/             chunks found damaged
// Directories are created mode 0700, files 0600: a repository holds whole
// disk images and is readable by its owner only. The full format is in
// man/backy-store.5; the names are built in store/filename.h. A Repository
// object is safe for concurrent reads from several threads; publishing,
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
#include "store/filename.h"
#include "store/fs_util.h"
#include "store/index.h"
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

class Repository {
 public:
  // Creates a repository in `dir` (created if missing; made mode 0700
  // if it exists). InvalidArgument when `dir` already holds a repository.
  static Status Init(const std::string& dir, const RepositoryConfig& config);

  // Replaces the config of the repository in `dir` atomically (the
  // scheduler writes each job's source and schedule this way).
  static Status WriteConfig(const std::string& dir,
                            const RepositoryConfig& config);

  // Opens an existing repository. NotFound when `dir` is not a directory
  // or has no config; Corruption when the config cannot be used.
  static Result<std::unique_ptr<Repository>> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const RepositoryConfig& config() const { return config_; }
  // The chunk store of revisions in the current form (all of them, unless
  // legacy()).
  ChunkStore& chunks() { return *chunks_; }
  // A backy 2.x repository, read in place: its revisions are listed with
  // Revision::legacy, and read through ChunksOf() and LoadIndex(Revision);
  // while `backy upgrade` runs, converted revisions are listed in their new
  // form instead. Locks are 2.x's (.backup, .purge). Nothing is written to
  // it but what distrust, verify and forget change of a 2.x revision.
  bool legacy() const { return config_.legacy; }
  // The store holding the chunks `revision`'s index names: a read-only
  // LegacyChunkStore for a 2.x revision, chunks() otherwise.
  ChunkStore& ChunksOf(const Revision& revision);
  // OK, or for a 2.x repository NotSupported naming it and saying to run
  // `backy upgrade` before `what` ("backup", "expire", "purge").
  Status RequireCurrentFormat(std::string_view what) const;
  // "file:/images/vm.raw", "ceph-rbd:pool/image": the source, for humans.
  std::string SourceName() const;
  // The same for a config's source section.
  static std::string SourceNameOf(
      const std::map<std::string, std::string>& source);
  std::string tmp_dir() const { return TmpDirName(dir_); }

  using DamagedRevision = store::DamagedRevision;
  struct RevisionList {
    std::vector<Revision> healthy;         // oldest first (timestamp, then id)
    std::vector<DamagedRevision> damaged;  // by id
  };
  // Reads every published revision's metadata. A damaged .rev does not
  // fail the scan: it is listed in `damaged`, and the others stay usable.
  // Fails only when the revisions directory cannot be listed.
  Result<RevisionList> ScanRevisions() const;
  // The healthy published revisions, oldest first (by timestamp, then
  // id): what every command works on (SPECs, parents of backups, expire).
  // Damaged ones are skipped, each logged once as a warning per
  // Repository object; ScanRevisions() lists them.
  Result<std::vector<Revision>> Revisions() const;
  // The directories whose entries ScanRevisions() reads: revisions/, and
  // in a 2.x repository also the repository itself (2.x's .rev files).
  // Every change to the revision list (publish, forget, a tag or trust
  // update: all by rename or unlink) changes one of their mtimes, which
  // is what RevisionCache watches.
  std::vector<std::string> RevisionDirectories() const;
  // The ids of every index file in revisions/ — published, damaged or left
  // over — for purge, which must keep every chunk any of them names.
  Result<std::vector<std::string>> IndexIds() const;
  // Reads and checks a revision's index. Corruption naming the file when
  // it is missing or damaged (see RevisionIndex::Decode); its size is
  // checked against its header before the slots are read.
  Result<RevisionIndex> LoadIndex(const std::string& id) const;
  // The index of `revision` in whichever form it is: for a 2.x revision,
  // its JSON mapping (LoadLegacyIndex), whose digests name chunks of
  // ChunksOf(revision).
  Result<RevisionIndex> LoadIndex(const Revision& revision) const;

  // Publishes a revision: its index, then its metadata, each atomically.
  // REQUIRES: every chunk the index names is durable (ChunkStore::Sync),
  // and the caller holds the writer lock.
  // Test point "index" (store/test_point.h): after the index is published.
  Status Publish(const Revision& revision, const RevisionIndex& index);
  // Rewrites the metadata of an existing revision (tags, trust).
  Status UpdateMetadata(const Revision& revision);
  // Removes a revision: metadata first (it disappears at once), then its
  // index. Its chunks stay until the next purge.
  Status Forget(const std::string& id);

  // The writer lock (backup, forget, expire, distrust; verify while it
  // updates revisions): exclusive, fails with Busy at once if held. Also
  // takes purge.lock shared, so no purge runs meanwhile.
  // `what` (e.g. "backup") is recorded for the Busy message.
  struct Locks {
    FileLock writer;
    FileLock purge;
  };
  Result<Locks> LockWriter(std::string_view what);
  // purge.lock shared (for a 2.x repository .purge, as 2.x's readers took
  // it): every holder of the writer lock, through LockWriter, and readers
  // that read a whole repository (upgrade --dry-run; nbd-server on a 2.x
  // repository). Waits while a purge runs (purges are short), saying so in
  // the log. Readers of one revision pin it instead (PinRevision).
  Result<FileLock> LockReader();
  // A reader's claim on `revision` (store/revision_pin.h): a purge keeps
  // every chunk its index names, also after the revision is forgotten,
  // until the pin is released. Takes purge.lock shared only while pinning
  // (waiting for a running purge). `what` ("restore", "nbd-server") and
  // the pid are recorded for purge's messages. NotFound when the revision
  // was removed since it was listed. Safe to call from several threads.
  Result<RevisionPin> PinRevision(const Revision& revision,
                                  std::string_view what);
  // For purge: purge.lock exclusive, waiting at most a second (readers
  // hold it shared only while they pin). Busy when a backup, forget,
  // expire, distrust, upgrade or verify's update is running.
  Result<FileLock> LockPurge();

  // Removes leftovers of crashed writers: everything in tmp/ and indexes
  // without metadata. REQUIRES: the writer lock, or LockPurge().
  Status RemoveLeftovers();

  std::string RevisionPath(const std::string& id) const;
  std::string IndexPath(const std::string& id) const;
  // The metadata and index files of `revision` in whichever form it is
  // (for a 2.x revision DIR/<id>.rev and its JSON mapping DIR/<id>).
  std::string MetadataPath(const Revision& revision) const;
  std::string IndexPath(const Revision& revision) const;

 private:
  Repository(std::string dir, RepositoryConfig config);

  const std::string dir_;
  const RepositoryConfig config_;
  std::unique_ptr<ChunkStore> chunks_;
  std::unique_ptr<ChunkStore> legacy_chunks_;  // only when legacy()
  mutable std::mutex warned_mu_;
  mutable std::set<std::string> warned_;  // GUARDED_BY(warned_mu_)
};

}  // namespace backy::store
