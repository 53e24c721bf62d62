// RevisionExport: a revision served as a read-only NBD export, and
// RepositoryExports: the ExportProvider of `backy nbd-server` that names
// revisions by SPEC (one repository) or JOB/SPEC (a directory of
// repositories, as the scheduler keeps them).
//
// Reads decode only the chunk blocks they touch, each checked against its
// hash. Blocks a read covers only in part (4 KiB random reads) go through
// the shared BlockCache; blocks it covers whole (streaming reads) are read
// straight into the reply buffer and not cached, so a scan does not evict
// the random-access working set. Open chunks are kept in a shared
// ChunkReaderCache, so sequential reads also get the kernel's readahead of
// each chunk file (measured: an extra readahead of the next chunk file
// made cold streaming slower, not faster). A damaged chunk fails only the
// reads that touch it (the server answers EIO). Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "backup/block_cache.h"
#include "backup/block_file.h"
#include "nbd/export.h"
#include "store/fs_util.h"
#include "store/repository.h"
#include "store/revision_cache.h"

namespace backy::backup {

class RevisionExport final : public nbd::Export {
 public:
  // `readers` may be shared with other exports of repositories that
  // outlive it (RepositoryExports keeps them all). `pin` (of `revision`)
  // is held as long as the export lives, so a purge keeps its chunks.
  RevisionExport(std::shared_ptr<store::Repository> repo,
                 store::Revision revision, store::RevisionIndex index,
                 std::shared_ptr<BlockCache> cache,
                 std::shared_ptr<ChunkReaderCache> readers,
                 store::RevisionPin pin = {},
                 std::shared_ptr<BlockFile> block_file = nullptr);

  uint64_t Size() const override { return index_.image_size(); }
  std::string Description() const override;
  // The revision id ("JOB/ID" once RepositoryExports names the job).
  std::string CanonicalName() const override {
    return canonical_name_.empty() ? revision_.id : canonical_name_;
  }
  // Set before the export is handed out; not thread-safe.
  void SetCanonicalName(std::string name) { canonical_name_ = std::move(name); }
  Status Read(uint64_t offset, std::span<uint8_t> buf) override {
    return ReadRange(offset, buf, /*nowait=*/false, nullptr);
  }
  // Served from the block cache, open chunks and the page cache only.
  bool CanReadNoWait() const override { return true; }
  Status ReadNoWait(uint64_t offset, std::span<uint8_t> buf) override {
    return ReadRange(offset, buf, /*nowait=*/true, nullptr);
  }
  // Raw blocks (data that did not compress) are checked and then sent from
  // their chunk files: chunk files never change once written (a rewrite
  // replaces the file, a purge unlinks it; an open descriptor keeps the
  // old bytes), so what is sent is what was checked.
  bool CanReadToFiles() const override { return true; }
  Status ReadToFiles(uint64_t offset, std::span<uint8_t> buf, bool nowait,
                     std::vector<nbd::FileExtent>* files) override {
    return ReadRange(offset, buf, nowait, files);
  }
  // A read within one block of an open chunk whose reader reads
  // asynchronously (a RADOS repository's) is started here, without a
  // worker, through the same block cache and block checks as Read(); any
  // other read is left to Read().
  bool CanReadAsync() const override { return true; }
  bool ReadAsync(uint64_t offset, std::span<uint8_t> buf,
                 std::function<void(Status)> done) override;
  Status BlockStatus(uint64_t offset, uint64_t length,
                     std::vector<nbd::ExportExtent>* extents) override;
  Status Cache(uint64_t offset, uint64_t length) override;

 private:
  // Read() or, with `nowait`, ReadNoWait(); with `files`, ReadToFiles().
  Status ReadRange(uint64_t offset, std::span<uint8_t> buf, bool nowait,
                   std::vector<nbd::FileExtent>* files);
  // Copies [offset, offset + out.size()) of slot `slot` (chunk-relative
  // offset) into `out`, through the cache; `nowait` and `files` as for
  // ReadRange().
  Status ReadSlot(size_t slot, uint64_t offset, std::span<uint8_t> out,
                  bool nowait, std::vector<nbd::FileExtent>* files);
  // Logs a failed read of `slot` (not WouldBlock) and returns `s`.
  Status SlotFailure(size_t slot, const Status& s) const;
  // The open chunk of a data slot, through the reader cache; with
  // `nowait`, only a chunk open already (else WouldBlock).
  Result<ChunkReaderCache::Reader> SlotReader(size_t slot, bool nowait);

  std::shared_ptr<store::Repository> repo_;
  const store::Revision revision_;
  const store::RevisionIndex index_;
  std::shared_ptr<BlockCache> cache_;
  std::shared_ptr<ChunkReaderCache> readers_;
  store::RevisionPin pin_;
  std::shared_ptr<BlockFile> block_file_;  // may be null
  std::string canonical_name_;
};

// "2026-11-22 03:10:02 UTC, tags daily,weekly, trusted" (for NBD_OPT_LIST).
std::string DescribeRevision(const store::Revision& r);

class RepositoryExports final : public nbd::ExportProvider {
 public:
  // Opens BACKUPDIR: a repository (export names are SPECs) or a directory
  // whose subdirectories are repositories (names are JOB/SPEC). Each
  // opened export pins its revision (store/revision_pin.h), so a purge may
  // run and keeps what is served; a 2.x repository's reader lock (.purge
  // shared, as 2.x's readers took it) is held for the provider's lifetime.
  //
  // One revision per name: while any connection holds an export opened by
  // a name ("last", a tag, a number), every other open of that name gets
  // the same export, so the connections of one multi-connection client
  // (CAN_MULTI_CONN) read one revision even when a backup publishes a new
  // one between their opens. The name is resolved again once nothing holds
  // it. Exports are shared per revision too: one index in memory and one
  // pin however many names and connections reach it.
  //
  // Revision lists are cached per repository (store::RevisionCache), so
  // listing and opening cost a stat() while no revision changes.
  // Decoded compressed blocks are cached in memory up to `cache_bytes`,
  // and beyond that in `block_file` (may be null).
  // `backupdir` may be a rados: location of one repository, opened with
  // `options`.
  static Result<std::unique_ptr<RepositoryExports>> Open(
      const std::string& backupdir, uint64_t cache_bytes,
      std::shared_ptr<BlockFile> block_file = nullptr,
      const store::RepositoryOptions& options = {});

  Result<std::vector<nbd::ExportInfo>> ListExports(
      const nbd::Client& client) override;
  Result<std::shared_ptr<nbd::Export>> OpenExport(
      std::string_view name, const nbd::Client& client) override;

  // What OpenExport() answers for JOB/SPEC when there is no job JOB: also
  // what AuthorizedExports answers for a job a client may not see, so the
  // two cannot be told apart.
  static Status UnknownJob(std::string_view name);

  // True when BACKUPDIR is one repository (names are SPECs), false for a
  // directory of repositories (names are JOB/SPEC).
  bool single_repository() const { return single_; }

 private:
  struct Repo {
    std::shared_ptr<store::Repository> repo;
    store::RepositoryLock lock;                       // a 2.x repository's only
    std::unique_ptr<store::RevisionCache> revisions;  // of *repo
  };
  RepositoryExports() = default;
  // Opens revision `spec` of `job`'s repository, or the export of that
  // revision some connection holds. `name` is the export name, for errors.
  // REQUIRES: mu_ held.
  Result<std::shared_ptr<RevisionExport>> OpenRevision(const std::string& job,
                                                       Repo& repo,
                                                       const std::string& spec,
                                                       std::string_view name);

  bool single_ = true;
  std::map<std::string, Repo> repos_;  // job name ("" when single)
  // Serialises opens, so two connections opening one name at once get one
  // export. Opens are rare next to reads, which never take it.
  std::mutex mu_;
  // "JOB/SPEC" as opened (SPEC "last" for an empty one) → a handle of
  // that name onto its revision's export, alive while connections opened
  // by the name hold it; "JOB/REVID" → the export itself, alive while any
  // handle is. Expired entries are pruned on each open.
  std::map<std::string, std::weak_ptr<RevisionExport>> by_name_;
  std::map<std::string, std::weak_ptr<RevisionExport>> by_revision_;
  std::shared_ptr<BlockCache> cache_;
  std::shared_ptr<BlockFile> block_file_;
  // Declared after repos_, so destroyed before the stores it reads.
  std::shared_ptr<ChunkReaderCache> readers_;
};

}  // namespace backy::backup
