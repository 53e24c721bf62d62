// DirectoryRepository: a repository in one directory — the default kind,
// self-contained on the file system (movable with rsync; no database).
//
//   DIR/config                  YAML: format, source, store options
//   DIR/lock                    flock: the writer lock, held exclusively by
//                               backup, forget, expire, distrust, copy, and
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
//   DIR/backy.log               what each command did
// Directories are created mode 0700, files 0600: a repository holds whole
// disk images and is readable by its owner only. The full format is in
// man/backy-store.5; the names are built in store/filename.h. A backy 2.x
// repository is read in place (store/legacy_repository.h) until `backy
// upgrade` converts it.
#pragma once

#include <memory>
#include <string>

#include "store/filename.h"
#include "store/fs_util.h"
#include "store/repository.h"

namespace backy::store {

class DirectoryRepository final : public Repository {
 public:
  // Creates a repository in `dir` (created if missing; made mode 0700
  // if it exists). InvalidArgument when `dir` already holds a repository.
  static Status Init(const std::string& dir, const RepositoryConfig& config);
  static Status WriteConfig(const std::string& dir,
                            const RepositoryConfig& config);
  // NotFound when `dir` is not a directory or has no config; Corruption
  // when the config cannot be used.
  static Result<std::unique_ptr<DirectoryRepository>> Open(
      const std::string& dir);

  DirectoryRepository* AsDirectory() override { return this; }
  const std::string& dir() const { return location(); }
  std::string tmp_dir() const { return TmpDirName(dir()); }

  ChunkStore& chunks() override { return *chunks_; }
  ChunkStore& ChunksOf(const Revision& revision) override;
  Result<RevisionList> ScanRevisions() const override;
  Result<bool> HasRevision(const Revision& revision) const override;
  // revisions/, and in a 2.x repository also the repository itself (2.x's
  // .rev files). Every change to the revision list (publish, forget, a
  // tag or trust update: all by rename or unlink) changes one of their
  // mtimes.
  std::vector<std::string> RevisionDirectories() const override;
  Result<std::vector<std::string>> IndexIds() const override;
  Result<RevisionIndex> LoadIndex(const std::string& id) const override;
  Result<RevisionIndex> LoadIndex(const Revision& revision) const override;
  std::string ConfigName() const override { return ConfigFileName(dir()); }
  std::string IndexName(const Revision& revision) const override {
    return IndexPath(revision);
  }
  // DIR/backy.log; "" for a 2.x repository (it stays as 2.x left it).
  std::string LogFile() const override;

  Status Publish(const Revision& revision, const RevisionIndex& index) override;
  Status UpdateMetadata(const Revision& revision) override;
  Status Forget(const std::string& id) override;

  // In a 2.x repository, 2.x's own locks: .backup for writers, .purge for
  // readers and purge, as 2.x's commands take them.
  Result<RepositoryLock> LockWriter(std::string_view what) override;
  Result<RepositoryLock> LockReader() override;
  Result<RevisionPin> PinRevision(const Revision& revision,
                                  std::string_view what) override;
  Result<RepositoryLock> LockPurge() override;
  Result<std::vector<std::string>> ForEachLivePin(
      const std::function<Status(const PinnedIndex&,
                                 const Result<RevisionIndex>&)>& mark) override;
  Status RemoveStalePins(const std::vector<std::string>& tokens) override;
  Status RemoveLeftovers() override;

  std::string RevisionPath(const std::string& id) const;
  std::string IndexPath(const std::string& id) const;
  // The metadata and index files of `revision` in whichever form it is
  // (for a 2.x revision DIR/<id>.rev and its JSON mapping DIR/<id>).
  std::string MetadataPath(const Revision& revision) const;
  std::string IndexPath(const Revision& revision) const;

 private:
  DirectoryRepository(std::string dir, RepositoryConfig config);

  std::unique_ptr<ChunkStore> chunks_;
  std::unique_ptr<ChunkStore> legacy_chunks_;  // only when legacy()
};

}  // namespace backy::store
